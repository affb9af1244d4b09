//! Verifies the werkzeug password hashes of users imported from the old Flask site, so that
//! their first login can check the password they type and upgrade the hash to argon2id.
//!
//! Self-contained: std and external crates only, nothing from this crate. `core::hashing` calls
//! `looks_like_werkzeug`, `parse` and `LegacyHash::{verify, format}`.
//!
//! # Formats
//!
//! werkzeug stores `method$salt$hex`, and `check_password_hash` recomputes `hex` from the
//! password and compares the two hex strings. This module accepts exactly what some werkzeug
//! version's `generate_password_hash` wrote and that version's `check_password_hash` verified:
//!
//! | stored | made by | derivation |
//! |---|---|---|
//! | `pbkdf2:sha1:<iterations>$salt$hex` | 0.9 on (default until 0.11: 1,000 iterations) | PBKDF2-HMAC-SHA1, 20 bytes |
//! | `pbkdf2:sha256:<iterations>$salt$hex` | 0.12 on (default until 2.3: 50,000, 150,000, 260,000, 600,000; 3.1's `pbkdf2`: 1,000,000) | PBKDF2-HMAC-SHA256, 32 bytes |
//! | `pbkdf2:sha512:<iterations>$salt$hex` | any version, asked for explicitly | PBKDF2-HMAC-SHA512, 64 bytes |
//! | `scrypt:<n>:<r>:<p>$salt$hex` | 2.3 on (default from 3.0: `scrypt:32768:8:1`) | scrypt, 64 bytes |
//!
//! In every version the salt is used as the UTF-8 bytes of the salt *string* as stored (never
//! decoded), the password as the UTF-8 bytes of what was typed, the derived key's length is the
//! digest's size (pbkdf2) or 64 (scrypt), and it is compared as lowercase hex. werkzeug never
//! normalised a password, so [`LegacyHash::verify`] takes the typed bytes, not the NFKC form the
//! argon2id hashes use: `ａｂｃ１２３` verifies only as `ａｂｃ１２３`, never as `abc123`.
//!
//! Choices where werkzeug is looser than what it ever wrote (all refused with a name, see
//! [`Unsupported`]):
//! - **pbkdf2 without an iteration count** (`pbkdf2:sha256$…`, `pbkdf2$…`). No version wrote one:
//!   from 0.9, when pbkdf2 came, `generate_password_hash` stored `pbkdf2:<digest>:<iterations>`
//!   with the count it used. `check_password_hash` fills a missing count with *its own* default,
//!   which changed six times (1,000 in 0.9 to 1,000,000 in 3.1), so such a string has no single
//!   meaning: refused as `"pbkdf2 without iterations"`. (0.x also read `pbkdf2:sha256:0` and
//!   `pbkdf2:sha256:` as "the default"; 2.0 on raise on 0; both are refused here.)
//! - **Iterations and scrypt parameters** are read as werkzeug writes them: ASCII decimal digits,
//!   no sign, no leading zero (Python's `int()` would also take `+1_000`; werkzeug never wrote
//!   that).
//! - **`scrypt$salt$hex`** (no parameters) is read as `scrypt:32768:8:1`: the only default scrypt
//!   ever had in werkzeug, so unambiguous, though `generate_password_hash` always spelled it out.
//! - **Digest names** are the three werkzeug documents, spelled as it wrote its defaults: `sha1`,
//!   `sha256`, `sha512`. OpenSSL would also take `SHA256` or `sha-256` or `md5`; the old site
//!   used werkzeug's defaults, so other spellings and digests are refused with the name.
//! - **An empty salt** is refused: no version made one (werkzeug < 2.3 refused pbkdf2 without a
//!   salt), so it means a damaged item.
//! - **The digest** must be lowercase hex of exactly the derived length: werkzeug compares hex
//!   strings, so anything else could never match there either.
//! - **Salted hmac and plain forms** (`sha1$salt$hmac`, `md5$…`, `plain$$password`, unsalted
//!   `sha1$$hex`), which werkzeug < 3.0 also checked, are refused: weak (a single hash, or the
//!   password itself), and the old site never made them (its default was pbkdf2, then scrypt).
//!
//! # Bounds
//!
//! The stored string decides the cost of a verification, so a damaged or hostile one must not
//! exhaust the function (a Lambda of 128 MB must survive the largest allowed; the deployed one has
//! 512 MB and a 10 s timeout). Beyond these it is refused as `"… out of bounds"`:
//! The bounds also set the **worst case of one verification**, which the login's failure floor
//! must cover so that a wrong password cannot tell which numbers hold accounts (docs/login.md,
//! "What still tells"; issue 20): each is at most about 10 verifications of our argon2id hash
//! (7.6 for `pbkdf2:sha256:1000000`, about 116 ms on one x86_64 core here).
//! - pbkdf2: 1 ≤ iterations ≤ [`MAX_PBKDF2_ITERATIONS`] (1,000,000, werkzeug 3.1's default and
//!   the largest any version chose) for SHA-1 and SHA-256; ≤ [`MAX_PBKDF2_SHA512_ITERATIONS`]
//!   (250,000) for SHA-512, whose iteration costs about four SHA-256 ones (werkzeug never chose
//!   SHA-512 by default; a hash made with it and more iterations is refused, and its owner resets
//!   the password by SMS code).
//! - the salt: at most [`MAX_SALT_LEN`] (128) bytes; werkzeug's are 8 or 16 characters.
//! - scrypt: n a power of two ≥ 2, 1 ≤ r ≤ [`MAX_SCRYPT_R`] (32), 1 ≤ p ≤ [`MAX_SCRYPT_P`] (16),
//!   the big buffer 128·n·r ≤ [`MAX_SCRYPT_MEMORY`] (64 MiB, twice werkzeug's default; with r
//!   and p capped the whole allocation is at most 64 MiB + 68 KiB), and the work n·r·p ≤
//!   [`MAX_SCRYPT_WORK`] (2^19, twice werkzeug's default, about 0.14 s here).
//! - scrypt parameters werkzeug itself could not verify are refused as `"scrypt parameters
//!   werkzeug refuses"`: werkzeug passes `maxmem = 132·n·r·p` to `hashlib.scrypt`, and OpenSSL
//!   refuses when its buffers 128·r·(n + p + 2) exceed that (n = 16, r = 8, p = 1, for one), when
//!   maxmem exceeds `INT_MAX`, or when n ≥ 2^(16·r). (Checked against Python 3.11's hashlib on
//!   OpenSSL 3.0 for all 639 parameter sets within the bounds above with r in {1, 2, 3, 4, 8, 16,
//!   32} and p in {1, 2, 3, 4, 8, 16}: the same answer for each.)
//!
//! Measured (`cargo test --release --test werkzeug -- --ignored --nocapture timings`): the
//! largest scrypt allowed, `scrypt:65536:8:1`, raises a process's peak RSS by 64 MiB (3 to 67
//! MiB); the function's own peak is 30 MiB (docs/performance.md), so about 94 MiB in all.
//!
//! # Crates
//!
//! PBKDF2 and the constant-time comparison from `aws-lc-rs`, already linked for TLS and JWT, with
//! AWS-LC's assembly SHA-1/SHA-256/SHA-512 on x86_64 and aarch64; scrypt from RustCrypto's
//! `scrypt` (aws-lc-rs has none; AWS-LC's `EVP_PBE_scrypt` only through unsafe FFI, and slower).
//! Measured against RustCrypto's `pbkdf2`/`hmac`/`sha1`/`sha2`: one derivation, release build,
//! interleaved with the other candidate, median of 15 on this 2-core x86_64 (AMD EPYC, SHA
//! extensions):
//!
//! | derivation | aws-lc-rs 1.19 | RustCrypto | Python hashlib (werkzeug) |
//! |---|---|---|---|
//! | `pbkdf2:sha256:600000` | 74 ms | 63 ms | 157 ms |
//! | `pbkdf2:sha256:1000000` | 116 ms | 100 ms | 233 ms |
//! | `pbkdf2:sha1:600000` | 66 ms | 55 ms | |
//! | `pbkdf2:sha512:600000` | 300 ms | 294 ms | 322 ms |
//! | `scrypt:32768:8:1` | 80 ms (`EVP_PBE_scrypt`) | 68 ms | 97 ms |
//!
//! RustCrypto's PBKDF2 is 14-17 % faster here for SHA-1/SHA-256, yet aws-lc-rs is the choice:
//! - RustCrypto's PBKDF2 is generic, so it is compiled in *this* crate, unoptimised in dev and
//!   out of reach of `[profile.dev.package]`: 50x slower in `cargo test`, where the werkzeug
//!   vectors (several at 1,000,000 iterations) took 262 s against 26 s;
//! - it adds `sha1` and 14.6 KB more to the zipped arm64 artifact (+24.1 KB against +9.5 KB,
//!   both with this module reachable from the handler, as the login will make it);
//! - the difference is about 10 ms of a 600,000-iteration verification on this machine, paid
//!   once per imported user: their first login replaces the hash with argon2id.
//!
//! The function ships for arm64, where both use the ARMv8 SHA instructions; not measured there.

use std::fmt;
use std::num::NonZeroU32;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::pbkdf2;

/// The most PBKDF2 iterations accepted: werkzeug 3.1's default, the largest any version chose.
/// SHA-512 is held to [`MAX_PBKDF2_SHA512_ITERATIONS`].
pub const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// The most PBKDF2-SHA512 iterations accepted: one SHA-512 iteration costs about four SHA-256
/// ones here (AWS-LC, x86_64), so this is the same worst case as 1,000,000 of SHA-256. No
/// werkzeug version chose SHA-512 by default.
pub const MAX_PBKDF2_SHA512_ITERATIONS: u32 = 250_000;
/// The longest salt accepted, in bytes: werkzeug's are 8 or 16 characters. A longer one is
/// hashed once per derivation (scrypt: once per block), so it must not be unbounded.
pub const MAX_SALT_LEN: usize = 128;
/// The most memory scrypt's big buffer (128·n·r bytes) may take: twice werkzeug's default.
pub const MAX_SCRYPT_MEMORY: u64 = 64 << 20;
/// The most scrypt work (n·r·p) accepted: twice werkzeug's default `32768:8:1`.
pub const MAX_SCRYPT_WORK: u64 = 1 << 19;
/// The largest scrypt block size r accepted (werkzeug's default is 8).
pub const MAX_SCRYPT_R: u32 = 32;
/// The largest scrypt parallelism p accepted (werkzeug's default is 1).
pub const MAX_SCRYPT_P: u32 = 16;

/// scrypt's output length in werkzeug (`hashlib.scrypt`'s default dklen).
const SCRYPT_LEN: usize = 64;
/// The longest derived key: SHA-512's 64 bytes, and scrypt's.
const MAX_LEN: usize = 64;

/// Tells a werkzeug string (`method$salt$hash`) from a PHC one (`$argon2id$v=19$…`): the method
/// comes first, before any `$`, and two `$` follow it. Cheap, and says nothing of whether
/// [`parse`] accepts it: route a `true` to [`parse`] (which names whatever it refuses), a `false`
/// to the PHC verifier.
pub fn looks_like_werkzeug(stored: &str) -> bool {
    !stored.is_empty() && !stored.starts_with('$') && stored.matches('$').count() >= 2
}

/// The PBKDF2 digests werkzeug hashes are verified with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha256,
    Sha512,
}

impl Digest {
    /// The name werkzeug writes in the method.
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "sha1",
            Digest::Sha256 => "sha256",
            Digest::Sha512 => "sha512",
        }
    }

    /// The derived key's length: `hashlib.pbkdf2_hmac`'s default, the digest's size.
    pub fn output_len(self) -> usize {
        match self {
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha512 => 64,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Digest::Sha1),
            "sha256" => Some(Digest::Sha256),
            "sha512" => Some(Digest::Sha512),
            _ => None,
        }
    }
}

/// A key derivation and its parameters, all within the [bounds](self#bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Pbkdf2 {
        digest: Digest,
        iterations: u32,
    },
    /// `n` is a power of two.
    Scrypt {
        n: u64,
        r: u32,
        p: u32,
    },
}

impl Method {
    fn output_len(self) -> usize {
        match self {
            Method::Pbkdf2 { digest, .. } => digest.output_len(),
            Method::Scrypt { .. } => SCRYPT_LEN,
        }
    }
}

impl fmt::Display for Method {
    /// As werkzeug writes it: `pbkdf2:sha256:600000`, `scrypt:32768:8:1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Method::Pbkdf2 { digest, iterations } => {
                write!(f, "pbkdf2:{}:{iterations}", digest.name())
            }
            Method::Scrypt { n, r, p } => write!(f, "scrypt:{n}:{r}:{p}"),
        }
    }
}

/// A werkzeug hash that [`parse`] accepted: its method, its salt and the expected derived key.
/// `Debug` shows the method only, never the salt or the key.
#[derive(Clone)]
pub struct LegacyHash<'a> {
    method: Method,
    salt: &'a str,
    expected: [u8; MAX_LEN],
}

impl LegacyHash<'_> {
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method as werkzeug writes it (`pbkdf2:sha256:600000`, `scrypt:32768:8:1`), for logs
    /// and metrics: it holds no salt, hash or password.
    pub fn format(&self) -> String {
        self.method.to_string()
    }

    /// Whether `typed` (the UTF-8 bytes of the password exactly as typed: not trimmed, not
    /// normalised) derives the stored key. The derived key is compared in constant time. Costs
    /// one full derivation, up to the [bounds](self#bounds): call it off the async runtime.
    pub fn verify(&self, typed: &[u8]) -> bool {
        let expected = &self.expected[..self.method.output_len()];
        let salt = self.salt.as_bytes();
        match self.method {
            Method::Pbkdf2 { digest, iterations } => {
                let algorithm = match digest {
                    Digest::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
                    Digest::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
                    Digest::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
                };
                // Derives, then compares in constant time; Err for a mismatch or a failure.
                NonZeroU32::new(iterations).is_some_and(|iterations| {
                    pbkdf2::verify(algorithm, iterations, salt, typed, expected).is_ok()
                })
            }
            Method::Scrypt { n, r, p } => {
                let mut derived = [0u8; SCRYPT_LEN];
                u8::try_from(n.trailing_zeros())
                    .ok()
                    .and_then(|log_n| scrypt::Params::new(log_n, r, p).ok())
                    .is_some_and(|params| {
                        scrypt::scrypt(typed, salt, &params, &mut derived).is_ok()
                    })
                    && verify_slices_are_equal(&derived, expected).is_ok()
            }
        }
    }
}

impl fmt::Debug for LegacyHash<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyHash")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// A stored hash this module does not verify, and the name of its format, safe to log
/// (`"pbkdf2:md5"`, `"sha1$ (salted hmac)"`, `"plain"`, `"malformed pbkdf2 iterations"`,
/// `"scrypt parameters out of bounds"`, `"phc"`, `"unknown"`, …). [`parse`] fills it only from a
/// fixed list of names, never with a salt, hash or password nor any other text of the stored
/// string. The caller answers `bad_credentials` and logs a warning with the name. A tuple of a
/// `String`, as the login's caller (`core::hashing`) destructures it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported password hash format: {0}")]
pub struct Unsupported(pub String);

impl Unsupported {
    pub fn format(&self) -> &str {
        &self.0
    }
}

fn unsupported<T>(format: &'static str) -> Result<T, Unsupported> {
    Err(Unsupported(format.to_owned()))
}

/// Reads a stored werkzeug hash. Accepts what werkzeug wrote within the bounds (see the
/// [module](self) docs); refuses everything else with a loggable name. Never panics.
pub fn parse(stored: &str) -> Result<LegacyHash<'_>, Unsupported> {
    if stored.is_empty() {
        return unsupported("empty");
    }
    if stored.starts_with('$') {
        return unsupported("phc");
    }
    // As check_password_hash: the method, the salt, then the rest (which may hold `$`).
    let mut parts = stored.splitn(3, '$');
    let (Some(method), Some(salt), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
        return unsupported("unknown");
    };
    let mut args = method.split(':');
    let name = args.next().unwrap_or_default();
    let args: Vec<&str> = args.collect();
    let method = match name {
        "pbkdf2" => pbkdf2_method(&args)?,
        "scrypt" => scrypt_method(&args)?,
        _ if !args.is_empty() => return unsupported("unknown"),
        "plain" => return unsupported("plain"),
        _ => return unsupported(hmac_name(name, salt.is_empty())),
    };
    if salt.is_empty() {
        return unsupported(match method {
            Method::Pbkdf2 { .. } => "pbkdf2 without salt",
            Method::Scrypt { .. } => "scrypt without salt",
        });
    }
    if salt.len() > MAX_SALT_LEN {
        return unsupported(match method {
            Method::Pbkdf2 { .. } => "pbkdf2 salt out of bounds",
            Method::Scrypt { .. } => "scrypt salt out of bounds",
        });
    }
    let mut expected = [0u8; MAX_LEN];
    if !decode_lower_hex(hex, &mut expected[..method.output_len()]) {
        return unsupported(match method {
            Method::Pbkdf2 { .. } => "malformed pbkdf2 digest",
            Method::Scrypt { .. } => "malformed scrypt digest",
        });
    }
    Ok(LegacyHash {
        method,
        salt,
        expected,
    })
}

fn pbkdf2_method(args: &[&str]) -> Result<Method, Unsupported> {
    let (digest, iterations) = match args {
        [] | [_] => return unsupported("pbkdf2 without iterations"),
        [digest, iterations] => (*digest, *iterations),
        _ => return unsupported("malformed pbkdf2 parameters"),
    };
    let Some(digest) = Digest::from_name(digest) else {
        return unsupported(pbkdf2_other_digest(digest));
    };
    let iterations = match decimal(iterations) {
        Decimal::Malformed | Decimal::Value(0) => {
            return unsupported("malformed pbkdf2 iterations");
        }
        Decimal::TooLarge => return unsupported("pbkdf2 iterations out of bounds"),
        Decimal::Value(i) => i,
    };
    let most = match digest {
        Digest::Sha512 => MAX_PBKDF2_SHA512_ITERATIONS,
        Digest::Sha1 | Digest::Sha256 => MAX_PBKDF2_ITERATIONS,
    };
    match u32::try_from(iterations) {
        Ok(iterations) if iterations <= most => Ok(Method::Pbkdf2 { digest, iterations }),
        _ => unsupported("pbkdf2 iterations out of bounds"),
    }
}

fn scrypt_method(args: &[&str]) -> Result<Method, Unsupported> {
    let (n, r, p) = match args {
        // werkzeug's only scrypt default, in every version that has scrypt.
        [] => (1 << 15, 8, 1),
        [n, r, p] => {
            let mut values = [0u64; 3];
            let mut too_large = false;
            for (value, arg) in values.iter_mut().zip([n, r, p]) {
                match decimal(arg) {
                    Decimal::Malformed | Decimal::Value(0) => {
                        return unsupported("malformed scrypt parameters");
                    }
                    Decimal::TooLarge => too_large = true,
                    Decimal::Value(v) => *value = v,
                }
            }
            if too_large {
                return unsupported("scrypt parameters out of bounds");
            }
            (values[0], values[1], values[2])
        }
        _ => return unsupported("malformed scrypt parameters"),
    };
    if n < 2 || !n.is_power_of_two() {
        return unsupported("scrypt n not a power of two");
    }
    // Each factor is below 2^20 once these hold, so the products below cannot overflow.
    if r > u64::from(MAX_SCRYPT_R)
        || p > u64::from(MAX_SCRYPT_P)
        || n > MAX_SCRYPT_MEMORY / 128
        || 128 * n * r > MAX_SCRYPT_MEMORY
        || n * r * p > MAX_SCRYPT_WORK
    {
        return unsupported("scrypt parameters out of bounds");
    }
    // What OpenSSL refuses under werkzeug's maxmem = 132·n·r·p (crypto/evp/pbe_scrypt.c).
    let maxmem = 132 * n * r * p;
    let needed = 128 * r * (n + p + 2);
    let n_too_large_for_r = 16 * r < 64 && n >= 1 << (16 * r);
    if needed > maxmem || maxmem > i32::MAX as u64 || n_too_large_for_r {
        return unsupported("scrypt parameters werkzeug refuses");
    }
    let (Ok(r), Ok(p)) = (u32::try_from(r), u32::try_from(p)) else {
        return unsupported("scrypt parameters out of bounds");
    };
    Ok(Method::Scrypt { n, r, p })
}

enum Decimal {
    Value(u64),
    TooLarge,
    Malformed,
}

/// A count as werkzeug writes one (`%d` of a positive int): ASCII digits, no sign, no leading
/// zero (a lone `0` reads as 0, which every caller refuses).
fn decimal(s: &str) -> Decimal {
    let bytes = s.as_bytes();
    if bytes.is_empty()
        || !bytes.iter().all(u8::is_ascii_digit)
        || (bytes.len() > 1 && bytes[0] == b'0')
    {
        return Decimal::Malformed;
    }
    s.parse().map_or(Decimal::TooLarge, Decimal::Value)
}

/// Fills `out` from lowercase hex of exactly twice its length.
fn decode_lower_hex(hex: &str, out: &mut [u8]) -> bool {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let hex = hex.as_bytes();
    if hex.len() != 2 * out.len() {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => *byte = (hi << 4) | lo,
            _ => return false,
        }
    }
    true
}

/// The digests Python's hashlib offers besides ours, as names werkzeug may have stored in
/// `pbkdf2:<digest>:…`: named in the log, anything else is "unrecognised".
fn pbkdf2_other_digest(name: &str) -> &'static str {
    match name {
        "md5" => "pbkdf2:md5",
        "sha224" => "pbkdf2:sha224",
        "sha384" => "pbkdf2:sha384",
        "sha512_224" => "pbkdf2:sha512_224",
        "sha512_256" => "pbkdf2:sha512_256",
        "sha3_224" => "pbkdf2:sha3_224",
        "sha3_256" => "pbkdf2:sha3_256",
        "sha3_384" => "pbkdf2:sha3_384",
        "sha3_512" => "pbkdf2:sha3_512",
        "blake2b" => "pbkdf2:blake2b",
        "blake2s" => "pbkdf2:blake2s",
        "sm3" => "pbkdf2:sm3",
        "ripemd160" => "pbkdf2:ripemd160",
        "SHA1" | "SHA-1" | "sha-1" => "pbkdf2:sha1 (other spelling)",
        "SHA256" | "SHA-256" | "sha-256" | "SHA2-256" | "sha2-256" => {
            "pbkdf2:sha256 (other spelling)"
        }
        "SHA512" | "SHA-512" | "sha-512" | "SHA2-512" | "sha2-512" => {
            "pbkdf2:sha512 (other spelling)"
        }
        _ => "pbkdf2:unrecognised digest",
    }
}

/// werkzeug < 3.0's `method$salt$hmac` (or `method$$hash` without a salt), by hashlib name.
fn hmac_name(name: &str, unsalted: bool) -> &'static str {
    match (name, unsalted) {
        ("md5", false) => "md5$ (salted hmac)",
        ("md5", true) => "md5$ (unsalted)",
        ("sha1", false) => "sha1$ (salted hmac)",
        ("sha1", true) => "sha1$ (unsalted)",
        ("sha224", false) => "sha224$ (salted hmac)",
        ("sha224", true) => "sha224$ (unsalted)",
        ("sha256", false) => "sha256$ (salted hmac)",
        ("sha256", true) => "sha256$ (unsalted)",
        ("sha384", false) => "sha384$ (salted hmac)",
        ("sha384", true) => "sha384$ (unsalted)",
        ("sha512", false) => "sha512$ (salted hmac)",
        ("sha512", true) => "sha512$ (unsalted)",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn refused(stored: &str) -> String {
        match parse(stored) {
            Ok(h) => panic!("{stored:?} parsed as {}", h.format()),
            Err(e) => e.0,
        }
    }

    #[test]
    fn known_answers_from_the_rfcs() {
        // RFC 6070 (PBKDF2-HMAC-SHA1), RFC 7914 section 12 (scrypt), and the PBKDF2-HMAC-SHA256
        // and -SHA512 vectors widely published for "password"/"salt", written as werkzeug would.
        let cases = [
            "pbkdf2:sha1:1$salt$0c60c80f961f0e71f3a9b524af6012062fe037a6",
            "pbkdf2:sha1:4096$salt$4b007901b765489abead49d926f721d065a429c1",
            "pbkdf2:sha256:1$salt$120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
            "pbkdf2:sha256:4096$salt$c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
            "pbkdf2:sha512:1$salt$867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce",
            "scrypt:1024:8:16$NaCl$fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162\
             2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
        ];
        for stored in cases {
            let stored = stored.replace(' ', "");
            let hash = parse(&stored).unwrap();
            assert!(hash.verify(b"password"), "{stored}");
            assert!(!hash.verify(b"Password"), "{stored}");
            assert!(!hash.verify(b"password "), "{stored}");
            assert!(!hash.verify(b""), "{stored}");
        }
    }

    #[test]
    fn format_is_the_method_as_werkzeug_writes_it() {
        let stored = format!("pbkdf2:sha256:600000$abc${SHA256_HEX}");
        let h = parse(&stored).unwrap();
        assert_eq!(h.format(), "pbkdf2:sha256:600000");
        assert_eq!(
            h.method(),
            Method::Pbkdf2 {
                digest: Digest::Sha256,
                iterations: 600_000
            }
        );
        let scrypt = format!("scrypt:32768:8:1$abc${}", "ab".repeat(64));
        assert_eq!(parse(&scrypt).unwrap().format(), "scrypt:32768:8:1");
        // No parameters: werkzeug's one scrypt default.
        let bare = format!("scrypt$abc${}", "ab".repeat(64));
        assert_eq!(parse(&bare).unwrap().format(), "scrypt:32768:8:1");
        let sha1 = format!("pbkdf2:sha1:1000$abc${}", "00".repeat(20));
        assert_eq!(parse(&sha1).unwrap().format(), "pbkdf2:sha1:1000");
        let sha512 = format!("pbkdf2:sha512:1$abc${}", "00".repeat(64));
        assert_eq!(parse(&sha512).unwrap().format(), "pbkdf2:sha512:1");
    }

    #[test]
    fn the_salt_is_the_salt_string_s_bytes_not_decoded() {
        // Same derivation as RFC 6070's first vector, only if the salt is taken as text: a
        // hex- or base64-looking salt must not be decoded either.
        let h = parse("pbkdf2:sha1:1$salt$0c60c80f961f0e71f3a9b524af6012062fe037a6").unwrap();
        assert!(h.verify(b"password"));
        let h = parse("pbkdf2:sha1:1$73616c74$0c60c80f961f0e71f3a9b524af6012062fe037a6").unwrap();
        assert!(!h.verify(b"password"));
    }

    #[test]
    fn debug_and_errors_hold_no_salt_or_digest() {
        let stored = format!("pbkdf2:sha256:1000$SALTSALT${SHA256_HEX}");
        let h = parse(&stored).unwrap();
        let debug = format!("{h:?}");
        assert!(
            !debug.contains("SALTSALT") && !debug.contains("0000"),
            "{debug}"
        );
        for stored in [
            "pbkdf2:md5:1000$SALTSALT$deadbeef",
            "sha1$SALTSALT$deadbeef",
            "plain$$hunter2",
            "pbkdf2:sha256:1x$SALTSALT$deadbeef",
            "whatever:SECRET$SALTSALT$deadbeef",
            "pbkdf2:hunter2:1000$SALTSALT$deadbeef",
        ] {
            let e = parse(stored).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                for secret in ["SALTSALT", "deadbeef", "hunter2", "SECRET"] {
                    assert!(!shown.contains(secret), "{stored}: {shown}");
                }
            }
        }
    }

    #[test]
    fn unsupported_and_malformed_forms_are_named() {
        let h = SHA256_HEX;
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(), "phc"),
            ("pbkdf2:sha256:1000".into(), "unknown"),
            ("pbkdf2:sha256:1000$salt".into(), "unknown"),
            ("garbage".into(), "unknown"),
            (format!("pbkdf2:sha256${h}"), "unknown"),
            (
                format!("pbkdf2:sha256$salt${h}"),
                "pbkdf2 without iterations",
            ),
            (format!("pbkdf2$salt${h}"), "pbkdf2 without iterations"),
            (
                format!("pbkdf2:sha256:1000:1$salt${h}"),
                "malformed pbkdf2 parameters",
            ),
            (
                format!("pbkdf2:sha256:abc$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:0$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:01000$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:+1000$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:-1000$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256: 1000$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:1_000$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:１０００$salt${h}"),
                "malformed pbkdf2 iterations",
            ),
            (
                format!("pbkdf2:sha256:1000001$salt${h}"),
                "pbkdf2 iterations out of bounds",
            ),
            (
                format!("pbkdf2:sha256:4294967296$salt${h}"),
                "pbkdf2 iterations out of bounds",
            ),
            (
                format!("pbkdf2:sha256:99999999999999999999999999$salt${h}"),
                "pbkdf2 iterations out of bounds",
            ),
            (format!("pbkdf2:md5:1000$salt${h}"), "pbkdf2:md5"),
            (format!("pbkdf2:sha384:1000$salt${h}"), "pbkdf2:sha384"),
            (
                format!("pbkdf2:SHA256:1000$salt${h}"),
                "pbkdf2:sha256 (other spelling)",
            ),
            (
                format!("pbkdf2:whirlpool:1000$salt${h}"),
                "pbkdf2:unrecognised digest",
            ),
            (format!("pbkdf2:sha256:1000$${h}"), "pbkdf2 without salt"),
            ("pbkdf2:sha256:1000$salt$".into(), "malformed pbkdf2 digest"),
            (
                "pbkdf2:sha256:1000$salt$zz".into(),
                "malformed pbkdf2 digest",
            ),
            (
                format!("pbkdf2:sha256:1000$salt${}", &h[2..]),
                "malformed pbkdf2 digest",
            ),
            (
                format!("pbkdf2:sha256:1000$salt${h}00"),
                "malformed pbkdf2 digest",
            ),
            (
                format!("pbkdf2:sha256:1000$salt${h}$"),
                "malformed pbkdf2 digest",
            ),
            (
                format!("pbkdf2:sha256:1000$salt${}", "AB".repeat(32)),
                "malformed pbkdf2 digest",
            ),
            (
                format!("pbkdf2:sha256:1000$salt${}", "xy".repeat(32)),
                "malformed pbkdf2 digest",
            ),
            (
                format!("pbkdf2:sha1:1000$salt${h}"),
                "malformed pbkdf2 digest",
            ),
            (
                format!("pbkdf2:sha512:1000$salt${h}"),
                "malformed pbkdf2 digest",
            ),
            ("sha1$salt$deadbeef".into(), "sha1$ (salted hmac)"),
            ("sha1$$deadbeef".into(), "sha1$ (unsalted)"),
            ("md5$salt$deadbeef".into(), "md5$ (salted hmac)"),
            ("sha256$salt$deadbeef".into(), "sha256$ (salted hmac)"),
            ("plain$$password".into(), "plain"),
            ("whirlpool$salt$deadbeef".into(), "unknown"),
            ("md5:x$salt$deadbeef".into(), "unknown"),
            (
                format!("scrypt:32768:8$salt${h}{h}"),
                "malformed scrypt parameters",
            ),
            (
                format!("scrypt:32768:8:1:1$salt${h}{h}"),
                "malformed scrypt parameters",
            ),
            (
                format!("scrypt:32768:8:0$salt${h}{h}"),
                "malformed scrypt parameters",
            ),
            (
                format!("scrypt:32768:0:1$salt${h}{h}"),
                "malformed scrypt parameters",
            ),
            (
                format!("scrypt:0:8:1$salt${h}{h}"),
                "malformed scrypt parameters",
            ),
            (
                format!("scrypt:n:8:1$salt${h}{h}"),
                "malformed scrypt parameters",
            ),
            (
                format!("scrypt:1:8:1$salt${h}{h}"),
                "scrypt n not a power of two",
            ),
            (
                format!("scrypt:3:8:1$salt${h}{h}"),
                "scrypt n not a power of two",
            ),
            (
                format!("scrypt:30000:8:1$salt${h}{h}"),
                "scrypt n not a power of two",
            ),
            // 128 MiB: twice the memory bound.
            (
                format!("scrypt:131072:8:1$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            (
                format!("scrypt:1048576:8:1$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            (
                format!("scrypt:2:1048576:1$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            (
                format!("scrypt:32768:64:1$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            (
                format!("scrypt:1024:8:32$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            // Within memory, but 8x the default's work.
            (
                format!("scrypt:32768:8:8$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            (
                format!("scrypt:18446744073709551616:8:1$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            (
                format!("scrypt:9223372036854775808:8:1$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            // hashlib.scrypt raises "memory limit exceeded" under werkzeug's maxmem.
            (
                format!("scrypt:16:8:1$salt${h}{h}"),
                "scrypt parameters werkzeug refuses",
            ),
            (
                format!("scrypt:64:8:1$salt${h}{h}"),
                "scrypt parameters werkzeug refuses",
            ),
            (
                format!("scrypt:65536:1:1$salt${h}{h}"),
                "scrypt parameters werkzeug refuses",
            ),
            (format!("scrypt:32768:8:1$${h}{h}"), "scrypt without salt"),
            (
                format!("scrypt:32768:8:1$salt${h}"),
                "malformed scrypt digest",
            ),
        ];
        for (stored, name) in cases {
            assert_eq!(refused(&stored), name, "{stored:?}");
        }
    }

    /// Issue 20: no stored string may cost more than the documented worst case, whatever part
    /// of it is large (a 390,000-character salt made a cheap scrypt cost 0.46 s).
    #[test]
    fn every_part_past_its_bound_is_refused() {
        let h = SHA256_HEX;
        let long_salt = "s".repeat(MAX_SALT_LEN + 1);
        for (stored, name) in [
            (
                format!(
                    "pbkdf2:sha512:{}$salt${h}{h}",
                    MAX_PBKDF2_SHA512_ITERATIONS + 1
                ),
                "pbkdf2 iterations out of bounds",
            ),
            (
                format!("pbkdf2:sha256:{}$salt${h}", MAX_PBKDF2_ITERATIONS + 1),
                "pbkdf2 iterations out of bounds",
            ),
            (
                format!("pbkdf2:sha256:1000${long_salt}${h}"),
                "pbkdf2 salt out of bounds",
            ),
            (
                format!("scrypt:2:32:16${long_salt}${h}{h}"),
                "scrypt salt out of bounds",
            ),
            (
                format!("scrypt:1024:32:16${}${h}{h}", "s".repeat(390_000)),
                "scrypt salt out of bounds",
            ),
            (
                format!("scrypt:32768:8:4$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
            (
                format!("scrypt:65536:8:2$salt${h}{h}"),
                "scrypt parameters out of bounds",
            ),
        ] {
            assert_eq!(
                refused(&stored),
                name,
                "{}",
                &stored[..40.min(stored.len())]
            );
        }
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        let h = SHA256_HEX;
        for stored in [
            format!("pbkdf2:sha256:1$salt${h}"),
            format!("pbkdf2:sha256:{MAX_PBKDF2_ITERATIONS}$salt${h}"),
            format!("pbkdf2:sha512:{MAX_PBKDF2_SHA512_ITERATIONS}$salt${h}{h}"),
            format!("pbkdf2:sha256:1${}${h}", "s".repeat(MAX_SALT_LEN)),
            format!("scrypt:65536:8:1$salt${h}{h}"),
            format!("scrypt:32768:8:2$salt${h}{h}"),
            format!("scrypt:16384:32:1$salt${h}{h}"),
            format!("scrypt:4096:16:8$salt${h}{h}"),
            format!("scrypt:128:8:1$salt${h}{h}"),
            format!("scrypt:32768:1:1$salt${h}{h}"),
        ] {
            assert!(parse(&stored).is_ok(), "{stored}");
        }
    }

    #[test]
    fn werkzeug_strings_are_told_from_phc_ones() {
        assert!(looks_like_werkzeug("pbkdf2:sha256:600000$abc$def"));
        assert!(looks_like_werkzeug("scrypt:32768:8:1$abc$def"));
        assert!(looks_like_werkzeug("plain$$password"));
        assert!(!looks_like_werkzeug(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
        ));
        assert!(!looks_like_werkzeug(""));
        assert!(!looks_like_werkzeug("pbkdf2:sha256:600000$abc"));
    }
}
