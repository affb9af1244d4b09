//! The session: a signed JWT (HS256) in a cookie, instead of server-side session state.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;
use crate::domain::Mobile;

/// The token's claims. `exp` = `iat` + the session TTL.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub mobile: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
#[error("could not sign the session token: {0}")]
pub struct SessionError(String);

/// The key id a token's header carries: lowercase hex of the first 8 bytes of SHA-256 over the
/// secret's bytes. Verifiers holding the old and the new key during a rotation pick the key whose
/// id matches (see docs/sessions.md); the id reveals nothing usable about the key.
pub fn key_id(secret: &[u8]) -> String {
    Sha256::digest(secret)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Signs sessions. Built once per cold start.
pub struct Sessions {
    key: EncodingKey,
    header: Header,
    ttl: Duration,
    issuer: String,
    cookie_name: String,
}

impl Sessions {
    pub fn new(config: &Config) -> Self {
        Self {
            key: EncodingKey::from_secret(config.jwt_secret.expose_secret().as_bytes()),
            header: Header {
                kid: Some(key_id(config.jwt_secret.expose_secret().as_bytes())),
                ..Header::new(Algorithm::HS256)
            },
            ttl: config.session_ttl,
            issuer: config.jwt_issuer.clone(),
            cookie_name: config.cookie_name.clone(),
        }
    }

    /// The `set-cookie` value carrying a fresh token for the user:
    /// `<name>=<jwt>; Path=/; Max-Age=<ttl>; HttpOnly; Secure; SameSite=Lax`.
    pub fn cookie_for(
        &self,
        user_id: Uuid,
        mobile: &Mobile,
        now: SystemTime,
    ) -> Result<SecretString, SessionError> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: user_id.to_string(),
            name: mobile.as_str().to_owned(),
            mobile: mobile.as_str().to_owned(),
            iat,
            exp: iat + self.ttl.as_secs(),
            iss: self.issuer.clone(),
            jti: Uuid::now_v7().to_string(),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| SessionError(format!("{:?}", e.kind())))?;
        Ok(SecretString::from(format!(
            "{}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
            self.cookie_name,
            self.ttl.as_secs()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn cookie_carries_a_verifiable_token_with_every_claim() {
        let config = Config::from_lookup(|k| {
            Some(match k {
                "USERS_TABLE" => "users".into(),
                "REDIS_URL" => "redis://127.0.0.1".into(),
                "JWT_SECRET" => SECRET.into(),
                "SESSION_TTL_SECONDS" => "600".into(),
                _ => return None,
            })
        })
        .unwrap();
        let sessions = Sessions::new(&config);
        let user_id = Uuid::now_v7();
        let mobile = Mobile::parse("13812345678").unwrap();
        let now = SystemTime::now();
        let cookie = sessions.cookie_for(user_id, &mobile, now).unwrap();
        let cookie = cookie.expose_secret();

        let (token, attrs) = cookie
            .strip_prefix("__Host-session=")
            .and_then(|rest| rest.split_once("; "))
            .expect("cookie starts with its name");
        assert_eq!(attrs, "Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax");

        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["ihome"]);
        let claims = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.sub, user_id.to_string());
        assert_eq!(
            (claims.name.as_str(), claims.mobile.as_str()),
            ("13812345678", "13812345678")
        );
        assert_eq!(claims.exp - claims.iat, 600);
        assert!(Uuid::parse_str(&claims.jti).is_ok());

        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(
            header.kid.as_deref(),
            Some(key_id(SECRET.as_bytes()).as_str())
        );

        let wrong = DecodingKey::from_secret(b"another secret of thirty-two bytes!!");
        assert!(jsonwebtoken::decode::<Claims>(token, &wrong, &validation).is_err());
    }

    #[test]
    fn key_id_is_the_first_8_bytes_of_sha256_in_lowercase_hex() {
        // printf %s 0123456789abcdef0123456789abcdef | sha256sum | cut -c1-16
        assert_eq!(key_id(SECRET.as_bytes()), "3eb1bd439947eb76");
        assert_eq!(key_id(b""), "e3b0c44298fc1c14");
    }
}
