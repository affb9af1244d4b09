//! Password hashing: argon2id with at least the OWASP minimum, stored as a PHC string, and run
//! on the blocking pool so a 10-50 ms hash never stalls the async runtime.
//!
//! The hash's 19 MiB of working memory is allocated (and touched) once, at cold start, and
//! reused: allocating it per hash made every blocking-pool thread's malloc arena keep its own
//! copy (peak RSS grew to 220 MiB over a few hundred requests), and the first request paid the
//! page faults.

use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};

use crate::core::domain::Password;

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
static MEMORIES: Mutex<Vec<Box<[Block]>>> = Mutex::new(Vec::new());

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None)
        .expect("the argon2 parameters are within the algorithm's bounds")
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// A zeroed working memory; writing the zeros commits its pages now rather than mid-hash.
fn new_memory() -> Box<[Block]> {
    vec![Block::default(); params().block_count()].into_boxed_slice()
}

/// Allocates the working memory ahead of the first request (call once at cold start).
pub fn prepare() {
    let memory = new_memory();
    MEMORIES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(memory);
}

/// Hashes on the calling thread; use [`hash_off_runtime`] from async code.
pub fn hash(password: &Password) -> Result<String, HashError> {
    let fail = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
    let pool = || MEMORIES.lock().unwrap_or_else(PoisonError::into_inner);
    let mut memory = pool().pop().unwrap_or_else(new_memory);
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        hasher()
            .hash_password_into_with_memory(
                password.expose().as_bytes(),
                salt_bytes,
                out,
                &mut *memory,
            )
            .map_err(|_| argon2::password_hash::Error::Crypto)
    });
    let mut kept = pool();
    if kept.len() < KEPT_MEMORIES {
        kept.push(memory);
    }
    drop(kept);
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
    crate::core::timing::timed(crate::core::timing::Stage::Hash, hashed)
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

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
}
