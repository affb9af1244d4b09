//! A minimal AWS Lambda Runtime API on loopback, so the built function binary runs here as it
//! runs in Lambda: it polls `/invocation/next`, answers on `/invocation/{id}/response`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

/// What the function sent back for one invocation.
#[derive(Debug)]
pub enum Reply {
    Response(serde_json::Value),
    Error(String),
}

/// An answer and how long the function took: from the event handed over on
/// `/invocation/next` to its answer arriving (what Lambda bills as the duration).
type Timed = (Reply, Duration);

struct Invocation {
    event: Vec<u8>,
    reply: oneshot::Sender<Timed>,
}

struct State {
    queue: AsyncMutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, (oneshot::Sender<Timed>, Instant)>>,
    first_poll: Mutex<Option<Instant>>,
    next_id: Mutex<u64>,
    /// A process to move into a CPU-capped cgroup when it first asks for an invocation: the
    /// `cgroup.procs` file and the pid (see [`Cap::AfterInit`]).
    cap_after_init: Mutex<Option<(std::path::PathBuf, u32)>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<Invocation>,
    state: Arc<State>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            queue: AsyncMutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            first_poll: Mutex::new(None),
            next_id: Mutex::new(0),
            cap_after_init: Mutex::new(None),
        });
        let server_state = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = server_state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| route(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            queue: tx,
            state,
        }
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: &[u8]) -> Reply {
        self.invoke_timed(event).await.0
    }

    /// As [`RuntimeApi::invoke`], with the invocation's duration.
    pub async fn invoke_timed(&self, event: &[u8]) -> Timed {
        let answer = self.enqueue(event);
        answer.await.expect("the function answered the invocation")
    }

    /// Queues `event` for the function now, without waiting: a loop of these puts a whole race
    /// in the queues before any answer is awaited. The receiver yields the answer.
    pub fn enqueue(&self, event: &[u8]) -> oneshot::Receiver<Timed> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Invocation {
                event: event.to_vec(),
                reply,
            })
            .expect("runtime API is running");
        answer
    }

    /// When the function first asked for an invocation (the end of its init).
    pub fn first_poll(&self) -> Option<Instant> {
        *self.state.first_poll.lock().unwrap()
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn route(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path
        .trim_start_matches("/2018-06-01/runtime/")
        .split('/')
        .collect();
    match (req.method(), parts.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => {
            state
                .first_poll
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
            // The end of init: from here on the process runs at its memory size's CPU share.
            // It is waiting for this answer, so it is capped before its first invocation.
            if let Some((procs, pid)) = state.cap_after_init.lock().unwrap().take() {
                std::fs::write(&procs, pid.to_string())
                    .expect("moving the function into its cgroup");
            }
            let Some(inv) = state.queue.lock().await.recv().await else {
                return Ok(reply(StatusCode::GONE, "runtime API closed"));
            };
            let id = {
                let mut n = state.next_id.lock().unwrap();
                *n += 1;
                format!("00000000-0000-4000-8000-{:012}", *n)
            };
            state
                .pending
                .lock()
                .unwrap()
                .insert(id.clone(), (inv.reply, Instant::now()));
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let mut r = reply(StatusCode::OK, inv.event);
            let h = r.headers_mut();
            h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
            h.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:ap-east-1:123456789012:function:ihome-register"
                    .parse()
                    .unwrap(),
            );
            h.insert(
                "lambda-runtime-trace-id",
                "Root=1-6742e2c0-0a1b2c3d4e5f60718293a4b5".parse().unwrap(),
            );
            Ok(r)
        }
        (&Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let answer = if *kind == "response" {
                Reply::Response(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
            } else {
                Reply::Error(String::from_utf8_lossy(&body).into_owned())
            };
            if let Some((waiter, handed)) = state.pending.lock().unwrap().remove(*id) {
                let _ = waiter.send((answer, arrived - handed));
            }
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        (&Method::POST, ["init", "error"]) => Ok(reply(StatusCode::ACCEPTED, "")),
        _ => Ok(reply(StatusCode::NOT_FOUND, "")),
    }
}

/// Where a function process runs: as any process, or in a cgroup whose CPU quota models a
/// Lambda memory size (`scripts/power-tune`). The path is the group's `cgroup.procs` file.
#[derive(Debug, Clone)]
pub enum Cap {
    None,
    /// In the group from its first instruction (the exec): init capped too, as under
    /// provisioned concurrency.
    FromStart(std::path::PathBuf),
    /// Uncapped until its first `/invocation/next`, then in the group: on-demand Lambda, whose
    /// init runs at a full vCPU.
    AfterInit(std::path::PathBuf),
}

/// The function binary running against a [`RuntimeApi`], its output captured.
pub struct Function {
    child: tokio::process::Child,
    output: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// With [`Cap::FromStart`]: when the child had joined its group, just before its exec.
    joined: Option<Instant>,
}

impl Function {
    /// Starts `binary` with Lambda's environment and `env` on top.
    pub fn spawn(binary: &str, api: &RuntimeApi, env: &[(&str, String)]) -> Self {
        Self::spawn_capped(binary, api, env, &Cap::None)
    }

    /// As [`Function::spawn`], the process CPU-capped by `cap`.
    pub fn spawn_capped(binary: &str, api: &RuntimeApi, env: &[(&str, String)], cap: &Cap) -> Self {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "ihome-register")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .env_remove("RUST_LOG")
            .env_remove("USERS_TABLE")
            .env_remove("JWT_SECRET")
            .env_remove("REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let joined = match cap {
            Cap::FromStart(procs) => Some(join_before_exec(cmd.as_std_mut(), procs)),
            _ => None,
        };
        let mut child = cmd.spawn().expect("the function binary starts");
        let joined = joined.map(|j| j.when());
        if let Cap::AfterInit(procs) = cap {
            *api.state.cap_after_init.lock().unwrap() =
                Some((procs.clone(), child.id().expect("the function is running")));
        }
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for mut stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            readers.push(tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        Self {
            child,
            output,
            readers,
            joined,
        }
    }

    /// With [`Cap::FromStart`], when the process had joined its group, its exec next: joining
    /// a cgroup v1 group waits for an RCU grace period (10-15 ms here), which is the harness's
    /// doing, not the function's, so a capped init is timed from here.
    pub fn joined(&self) -> Option<Instant> {
        self.joined
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The process's peak resident set size (VmHWM) in KiB, while it runs.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Waits for the process to exit by itself; returns its status and all it printed.
    pub async fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().await.unwrap();
        (status, self.drain().await)
    }

    /// Stops the process; returns all it printed.
    pub async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        self.drain().await
    }

    async fn drain(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        self.output.lock().unwrap().clone()
    }
}

/// Makes the child join the cgroup whose `cgroup.procs` is `procs` between fork and exec, so
/// every instruction of the program runs under the group's quota. Writing "0" moves the writer.
/// The child then writes the monotonic clock down a pipe, read by [`Joined::when`] once the
/// spawn has returned (which it does after the exec, so after the write).
pub fn join_before_exec(cmd: &mut std::process::Command, procs: &std::path::Path) -> Joined {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let path = std::ffi::CString::new(procs.as_os_str().as_bytes()).expect("a path without NUL");
    let mut fds = [0; 2];
    // SAFETY: a valid array for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read, write) = (fds[0], fds[1]);
    // SAFETY: the closure runs in the forked child before exec and calls only open, write,
    // close and clock_gettime (async-signal-safe); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let wrote = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if wrote != 1 {
                return Err(std::io::Error::last_os_error());
            }
            let ns = monotonic_ns().to_ne_bytes();
            libc::write(write, ns.as_ptr().cast(), ns.len());
            Ok(())
        });
    }
    Joined {
        read,
        write,
        before: (Instant::now(), monotonic_ns()),
    }
}

/// The pipe a child joining a group writes its time down (see [`join_before_exec`]).
#[must_use = "read it with when() after the spawn"]
pub struct Joined {
    read: i32,
    write: i32,
    before: (Instant, u64),
}

impl Joined {
    /// When the child had joined, on the harness's `Instant` axis.
    pub fn when(self) -> Instant {
        let mut ns = [0u8; 8];
        // SAFETY: descriptors from pipe2 above, closed once each; `ns` is writable.
        let got = unsafe {
            libc::close(self.write);
            let got = libc::read(self.read, ns.as_mut_ptr().cast(), ns.len());
            libc::close(self.read);
            got
        };
        assert_eq!(got, 8, "the child wrote when it joined its group");
        let (instant, mono) = self.before;
        instant + Duration::from_nanos(u64::from_ne_bytes(ns).saturating_sub(mono))
    }
}

/// CLOCK_MONOTONIC in ns: what `Instant` reads on Linux, comparable across processes.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
