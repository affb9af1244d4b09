//! Password hashing and verification: argon2id with at least the OWASP minimum, stored as a PHC
//! string, and run on the blocking pool so a 10-50 ms hash never stalls the async runtime.
//!
//! Verifying reads what a stored hash is: argon2id with our parameters (the usual case), another
//! argon2 variant or parameters (verified, then upgraded to ours), a werkzeug hash of a user
//! imported from the old site (verified over the password as typed, then upgraded), or anything
//! else (never matches; the format is named in a warning). A missing user is verified against a
//! dummy hash of ours, so "no such mobile" costs what "wrong password" costs.
//!
//! The hash's 19 MiB of working memory is allocated (and touched) once, at cold start, and
//! reused: allocating it per hash made every blocking-pool thread's malloc arena keep its own
//! copy (peak RSS grew to 220 MiB over a few hundred requests), and the first request paid the
//! page faults. It is mapped on its own and offered to the kernel for 2 MiB pages
//! (transparent huge pages): committing it then takes 10 huge pages instead of 4,864 small ones,
//! which was most of the init (issue 16; docs/performance.md). Where the kernel has huge pages
//! off, it is the 4,864 faults as before.

use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordVerifier, Version};

use crate::core::domain::{Password, TypedPassword};
use crate::core::timing::{Stage, timed};
use crate::core::werkzeug;

/// Memory cost in KiB, iterations and lanes: OWASP's minimum for argon2id (m=19 MiB, t=2, p=1).
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 failed: {0}")]
    Argon2(String),
    #[error("hashing task failed: {0}")]
    Task(String),
}

/// Working memories kept for reuse: one per hash that ran at the same time, at most this many.
const KEPT_MEMORIES: usize = 2;
static MEMORIES: Mutex<Vec<Memory>> = Mutex::new(Vec::new());

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None)
        .expect("the argon2 parameters are within the algorithm's bounds")
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// A zeroed working memory, its pages committed now rather than mid-hash.
fn new_memory() -> Memory {
    Memory::new(params().block_count())
}

/// Zeroed blocks in an anonymous mapping of their own, aligned to 2 MiB and marked for
/// transparent huge pages, every page already faulted in.
struct Memory {
    blocks: std::ptr::NonNull<Block>,
    len: usize,
    map: *mut libc::c_void,
    map_len: usize,
}

// SAFETY: `Memory` owns its mapping outright, like a `Box<[Block]>`.
unsafe impl Send for Memory {}

const HUGE_PAGE: usize = 2 << 20;
const PAGE: usize = 4096;

impl Memory {
    fn new(len: usize) -> Self {
        let bytes = len * size_of::<Block>();
        // Room to start on a 2 MiB boundary and end on one: the kernel backs only whole,
        // aligned 2 MiB ranges with a huge page.
        let map_len = bytes.next_multiple_of(HUGE_PAGE) + HUGE_PAGE;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(map != libc::MAP_FAILED, "out of memory for the hash");
        let start = (map as usize).next_multiple_of(HUGE_PAGE);
        let span = bytes.next_multiple_of(HUGE_PAGE);
        // SAFETY: [start, start + span) lies inside the mapping (map_len leaves room for the
        // alignment). Only a hint: an error (no huge pages in this kernel) leaves 4 KiB pages.
        unsafe { libc::madvise(start as *mut libc::c_void, span, libc::MADV_HUGEPAGE) };
        // Fault every page in now: in one call where the kernel can (5.14 and later), else by
        // writing to each page. An anonymous mapping reads as zeros, so writing a zero keeps
        // the contents; with huge pages the first write in each 2 MiB does the work.
        // SAFETY: [start, start + bytes) lies inside the mapping, which is writable.
        let populated =
            unsafe { libc::madvise(start as *mut libc::c_void, bytes, libc::MADV_POPULATE_WRITE) }
                == 0;
        if !populated {
            for offset in (0..bytes).step_by(PAGE) {
                // SAFETY: inside the mapping, which is readable and writable.
                unsafe { std::ptr::write_volatile((start + offset) as *mut u8, 0) };
            }
        }
        Self {
            // SAFETY: start is inside a successful mapping, so not null; 2 MiB alignment
            // satisfies Block's.
            blocks: unsafe { std::ptr::NonNull::new_unchecked(start as *mut Block) },
            len,
            map,
            map_len,
        }
    }
}

impl std::ops::Deref for Memory {
    type Target = [Block];
    fn deref(&self) -> &[Block] {
        // SAFETY: `len` blocks, zero-initialised by the kernel (all-zero is a valid Block),
        // owned by self for as long as the borrow.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Memory {
    fn deref_mut(&mut self) -> &mut [Block] {
        // SAFETY: as in `deref`, borrowed mutably through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.len) }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no borrow of it outlives self.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// Allocates the working memory ahead of the first request, once per process: a second call
/// (from another thread too) returns when the first one's memory is ready.
pub fn prepare() {
    static PREPARED: std::sync::Once = std::sync::Once::new();
    PREPARED.call_once(|| {
        let memory = new_memory();
        MEMORIES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
    });
}

/// Runs `work` with a working memory of our parameters' size from the pool (or a new one), and
/// puts it back.
fn with_memory<T>(work: impl FnOnce(&mut [Block]) -> T) -> T {
    let pool = || MEMORIES.lock().unwrap_or_else(PoisonError::into_inner);
    let mut memory = pool().pop().unwrap_or_else(new_memory);
    let out = work(&mut memory);
    let mut kept = pool();
    if kept.len() < KEPT_MEMORIES {
        kept.push(memory);
    }
    out
}

/// Hashes on the calling thread; use [`hash_off_runtime`] from async code.
pub fn hash(password: &Password) -> Result<String, HashError> {
    hash_str(password.expose())
}

/// Hashes any string, policy or not (an upgrade re-hashes a password chosen under no policy).
fn hash_str(password: &str) -> Result<String, HashError> {
    let fail = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let output = with_memory(|memory| {
        Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            hasher()
                .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, memory)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
    });
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params()).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output.map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Hashes on tokio's blocking pool.
pub async fn hash_off_runtime(password: Password) -> Result<String, HashError> {
    let hashed = tokio::task::spawn_blocking(move || hash(&password));
    timed(Stage::Hash, hashed)
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

/// An argon2id hash of ours over a password nobody knows (32 random characters, thrown away):
/// what a login for a mobile with no user is verified against, at the same cost as a real one.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$NDbeA7zxsR2oIEsooAfoUw$H0cIMiE0Cd6dCzXtPYF/+zebpocNq4u4WfS5670+sNQ";

/// The most an argon2 hash not of ours may ask for: its memory is allocated for the one
/// verification, and the function may run in 128 MB. Its work, memory × passes, is held to
/// argon2-cffi's default (64 MiB, 3 passes: about 9 of our verifications), so that the failure
/// floor covers it.
const MAX_FOREIGN_M_COST_KIB: u32 = 65_536;
const MAX_FOREIGN_T_COST: u32 = 10;
const MAX_FOREIGN_P_COST: u32 = 4;
const MAX_FOREIGN_WORK: u64 = 65_536 * 3;

/// What one verification of our argon2id hash has been taking on this instance, in ns (0: not
/// measured yet): a moving average, updated by every one. The login's failure floor is a
/// multiple of it, so it follows the CPU the instance really has (Lambda's share by memory
/// size, a noisy host) without being configured.
static OURS_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn record_ours(took: std::time::Duration) {
    use std::sync::atomic::Ordering;
    let took = took.as_nanos().min(u128::from(u64::MAX)) as u64;
    // An update lost to a concurrent one costs nothing but one sample.
    let old = OURS_NS.load(Ordering::Relaxed);
    let new = if old == 0 {
        took
    } else {
        old - old / 8 + took / 8
    };
    OURS_NS.store(new, Ordering::Relaxed);
}

/// What one verification of our hash costs on this instance, once one has been measured.
pub fn ours_cost() -> Option<std::time::Duration> {
    match OURS_NS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        ns => Some(std::time::Duration::from_nanos(ns)),
    }
}

/// Measures [`ours_cost`] with one verification against the dummy hash, off the runtime, when
/// none was measured yet on this instance; returns it.
pub async fn calibrate_off_runtime() -> Result<std::time::Duration, HashError> {
    if let Some(cost) = ours_cost() {
        return Ok(cost);
    }
    let measured = tokio::task::spawn_blocking(|| {
        verify_ours(&dummy(), b"calibration");
        ours_cost()
    });
    timed(Stage::Hash, measured)
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
        .ok_or_else(|| HashError::Task("no verification measured".into()))
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub matched: bool,
    /// A hash of ours over the password's NFKC form, to store in place of a matched hash that is
    /// not ours (werkzeug, or argon2 with other parameters). A secret: never logged.
    pub upgrade: Option<String>,
    /// The stored hash's format, safe to log: `argon2id`, `argon2id:m=4096,t=3,p=1`,
    /// `pbkdf2:sha256:600000`, `scrypt:32768:8:1`, ...; `none` when there was no user.
    pub format: String,
    /// The stored string is no hash this function can verify (unknown, unsupported or
    /// malformed): it never matches, and deserves a warning.
    pub unusable: bool,
}

/// What a stored string is.
enum Stored<'a> {
    Ours(PasswordHash<'a>),
    OtherArgon2(PasswordHash<'a>),
    Werkzeug(werkzeug::LegacyHash<'a>),
    Unusable(String),
}

fn classify(stored: &str) -> Stored<'_> {
    if stored.starts_with('$') {
        let Ok(phc) = PasswordHash::new(stored) else {
            return Stored::Unusable("malformed PHC string".into());
        };
        let Ok(algorithm) = Algorithm::try_from(phc.algorithm) else {
            return Stored::Unusable(format!("phc:{}", phc.algorithm.as_str()));
        };
        let Ok(theirs) = Params::try_from(&phc) else {
            return Stored::Unusable(format!("{algorithm}: malformed parameters"));
        };
        let version = phc.version.map(Version::try_from);
        let ours = params();
        let same = algorithm == Algorithm::Argon2id
            && matches!(version, Some(Ok(Version::V0x13)))
            && (theirs.m_cost(), theirs.t_cost(), theirs.p_cost())
                == (ours.m_cost(), ours.t_cost(), ours.p_cost())
            && phc
                .hash
                .is_some_and(|h| h.len() == Params::DEFAULT_OUTPUT_LEN)
            && phc.salt.is_some();
        if same {
            return Stored::Ours(phc);
        }
        if theirs.m_cost() > MAX_FOREIGN_M_COST_KIB
            || theirs.t_cost() > MAX_FOREIGN_T_COST
            || theirs.p_cost() > MAX_FOREIGN_P_COST
            || u64::from(theirs.m_cost()) * u64::from(theirs.t_cost()) > MAX_FOREIGN_WORK
        {
            return Stored::Unusable(format!("{algorithm}: parameters out of bounds"));
        }
        return Stored::OtherArgon2(phc);
    }
    if werkzeug::looks_like_werkzeug(stored) {
        return match werkzeug::parse(stored) {
            Ok(legacy) => Stored::Werkzeug(legacy),
            Err(werkzeug::Unsupported(format)) => Stored::Unusable(format),
        };
    }
    Stored::Unusable("unknown".into())
}

/// Verifies `ours` (argon2id, our parameters) with a pooled working memory.
fn verify_ours(ours: &PasswordHash<'_>, password: &[u8]) -> bool {
    let (Some(salt), Some(expected)) = (ours.salt, ours.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let started = std::time::Instant::now();
    let computed = with_memory(|memory| {
        Output::init_with(expected.len(), |out| {
            hasher()
                .hash_password_into_with_memory(password, salt_bytes, out, memory)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
    });
    record_ours(started.elapsed());
    // Output's equality is constant-time.
    computed.is_ok_and(|c| c == expected)
}

fn dummy() -> PasswordHash<'static> {
    PasswordHash::new(DUMMY).expect("the dummy hash is a PHC string")
}

/// Verifies `typed` against `stored` on the calling thread (use [`verify_off_runtime`] from
/// async code); `None` (no such user) and an unusable string cost one verification of ours and
/// never match. A match against a hash not of ours comes with its upgrade.
pub fn verify(stored: Option<&str>, typed: &TypedPassword) -> Result<Verdict, HashError> {
    let normalised = typed.normalised();
    let mut verdict = Verdict {
        matched: false,
        upgrade: None,
        format: "none".into(),
        unusable: false,
    };
    let Some(stored) = stored else {
        verify_ours(&dummy(), normalised.as_bytes());
        return Ok(verdict);
    };
    match classify(stored) {
        Stored::Ours(phc) => {
            verdict.format = "argon2id".into();
            verdict.matched = verify_ours(&phc, normalised.as_bytes());
        }
        Stored::OtherArgon2(phc) => {
            verdict.format = format!("{}:{}", phc.algorithm, phc.params);
            verdict.matched = Argon2::default()
                .verify_password(normalised.as_bytes(), &phc)
                .is_ok();
        }
        Stored::Werkzeug(legacy) => {
            verdict.format = legacy.format();
            verdict.matched = legacy.verify(typed.as_typed().as_bytes());
        }
        Stored::Unusable(format) => {
            verify_ours(&dummy(), normalised.as_bytes());
            verdict.format = format;
            verdict.unusable = true;
            return Ok(verdict);
        }
    }
    if verdict.matched && verdict.format != "argon2id" {
        verdict.upgrade = Some(hash_str(&normalised)?);
    }
    Ok(verdict)
}

/// Verifies on tokio's blocking pool.
pub async fn verify_off_runtime(
    stored: Option<String>,
    typed: TypedPassword,
) -> Result<Verdict, HashError> {
    let verified = tokio::task::spawn_blocking(move || verify(stored.as_deref(), &typed));
    timed(Stage::Hash, verified)
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_an_argon2id_phc_string_with_the_deployed_parameters() {
        let mobile = crate::core::domain::Mobile::parse("13812345678").unwrap();
        let password = Password::parse("correct horse", "correct horse", &mobile).unwrap();
        let phc = hash(&password).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(hasher().verify_password(b"correct horse", &parsed).is_ok());
        assert!(hasher().verify_password(b"correct horsE", &parsed).is_err());
        // The next hash reuses the working memory and is just as right.
        let again = hash(&password).unwrap();
        assert_ne!(phc, again, "each hash has its own salt");
        let parsed = PasswordHash::new(&again).unwrap();
        assert!(hasher().verify_password(b"correct horse", &parsed).is_ok());
    }

    fn typed(p: &str) -> TypedPassword {
        TypedPassword::new(p)
    }

    fn ours(p: &str) -> String {
        hash_str(p).unwrap()
    }

    /// A hash with other parameters, made by the argon2 crate itself.
    fn foreign(alg: Algorithm, m: u32, t: u32, p: u32, password: &str) -> String {
        use argon2::PasswordHasher;
        let params = Params::new(m, t, p, None).unwrap();
        Argon2::new(alg, Version::V0x13, params)
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    }

    #[test]
    fn our_hashes_verify_the_nfkc_form_and_need_no_upgrade() {
        let stored = ours("correct horse 9");
        for right in ["correct horse 9", "ｃｏｒｒｅｃｔ　ｈｏｒｓｅ　９"] {
            let v = verify(Some(&stored), &typed(right)).unwrap();
            assert_eq!(
                (v.matched, v.upgrade, v.format.as_str(), v.unusable),
                (true, None, "argon2id", false),
                "{right}"
            );
        }
        for wrong in ["correct horse 8", "Correct horse 9", "correct horse 9 ", ""] {
            let v = verify(Some(&stored), &typed(wrong)).unwrap();
            assert!(!v.matched && v.upgrade.is_none(), "{wrong:?}");
        }
    }

    #[test]
    fn no_user_is_verified_against_the_dummy_and_never_matches() {
        assert!(
            matches!(classify(DUMMY), Stored::Ours(_)),
            "the dummy costs what ours cost"
        );
        let v = verify(None, &typed("anything at all")).unwrap();
        assert_eq!(
            (v.matched, v.upgrade, v.format.as_str(), v.unusable),
            (false, None, "none", false)
        );
    }

    #[test]
    fn other_argon2_hashes_verify_and_are_upgraded_to_ours() {
        for (alg, m, t, p) in [
            (Algorithm::Argon2id, 4096, 3, 1),
            (Algorithm::Argon2id, 19_456, 2, 2),
            (Algorithm::Argon2i, 19_456, 2, 1),
            (Algorithm::Argon2d, 8192, 1, 1),
        ] {
            // Over the NFKC form, as this function has always hashed.
            let stored = foreign(alg, m, t, p, "secret pass");
            let v = verify(Some(&stored), &typed("ｓｅｃｒｅｔ pass")).unwrap();
            assert!(v.matched, "{stored}");
            assert!(v.format.starts_with(alg.as_str()), "{}", v.format);
            let upgrade = v.upgrade.expect("upgraded");
            assert!(upgrade.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
            let again = verify(Some(&upgrade), &typed("secret pass")).unwrap();
            assert_eq!((again.matched, again.upgrade), (true, None));
            let wrong = verify(Some(&stored), &typed("secret pas")).unwrap();
            assert_eq!((wrong.matched, wrong.upgrade), (false, None));
        }
    }

    #[test]
    fn what_cannot_be_verified_never_matches_and_is_named() {
        let huge = foreign(Algorithm::Argon2id, 8, 11, 1, "x")
            .replace("m=8,t=11,p=1", "m=1048576,t=2,p=1");
        for (stored, format) in [
            ("correct horse", "unknown"),
            // bcrypt's modular crypt format is not PHC.
            (
                "$2b$12$abcdefghijklmnopqrstuuZ0123456789abcdefghijklmnopqrstu",
                "malformed PHC string",
            ),
            ("$argon2id$v=19$m=19456,t=2,p=1$", "malformed PHC string"),
            (
                "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "phc:scrypt",
            ),
            ("", "unknown"),
            (huge.as_str(), "argon2id: parameters out of bounds"),
            (
                &foreign(Algorithm::Argon2id, 8, 11, 1, "x"),
                "argon2id: parameters out of bounds",
            ),
        ] {
            let v = verify(Some(stored), &typed("correct horse")).unwrap();
            assert_eq!(
                (
                    v.matched,
                    v.upgrade.is_none(),
                    v.unusable,
                    v.format.as_str()
                ),
                (false, true, true, format),
                "{stored}"
            );
        }
    }

    #[test]
    fn working_memory_is_zeroed_aligned_and_writable_to_its_last_block() {
        let mut memory = new_memory();
        assert_eq!(memory.len(), params().block_count());
        assert_eq!(memory.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(memory.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
        let last = memory.len() - 1;
        memory[last].as_mut()[127] = 7;
        assert_eq!(memory[last].as_ref()[127], 7);
    }
}
