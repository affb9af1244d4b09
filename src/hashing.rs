//! Password hashing: argon2id with at least the OWASP minimum, stored as a PHC string, and run
//! on the blocking pool so a 20-50 ms hash never stalls the async runtime.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;

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

fn hasher() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .expect("the argon2 parameters are within the algorithm's bounds");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes on the calling thread; use [`hash_off_runtime`] from async code.
pub fn hash(password: &Password) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// Hashes on tokio's blocking pool.
pub async fn hash_off_runtime(password: Password) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHash, PasswordVerifier};

    #[test]
    fn hash_is_an_argon2id_phc_string_with_the_deployed_parameters() {
        let mobile = crate::domain::Mobile::parse("13812345678").unwrap();
        let password = Password::parse("correct horse", "correct horse", &mobile).unwrap();
        let phc = hash(&password).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(hasher().verify_password(b"correct horse", &parsed).is_ok());
        assert!(hasher().verify_password(b"correct horsE", &parsed).is_err());
        assert_ne!(phc, hash(&password).unwrap(), "each hash has its own salt");
    }
}
