//! The session: a signed JWT (HS256) in a cookie, plus the smallest server-side state that lets
//! one end before its `exp`: each token carries its user's session version (`sv`), and a
//! [`SessionStore`] says whether this token was logged out and what the user's version is now
//! (docs/sessions.md, "What ends a session").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::core::domain::Mobile;
use crate::core::ports::{SessionStore, SessionStoreError};

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
    /// The user's session version when the token was issued; a token from before versions
    /// existed has none and counts as 0.
    #[serde(default)]
    pub sv: u64,
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

/// The shortest key accepted, in bytes (HS256 wants at least the hash's output size).
pub const MIN_KEY_BYTES: usize = 32;

/// What signing sessions needs; the edge reads it from the environment.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The HS256 key, at least [`MIN_KEY_BYTES`].
    pub secret: SecretString,
    /// The token's and the cookie's lifetime.
    pub ttl: Duration,
    /// The `iss` claim.
    pub issuer: String,
    /// The cookie's name (`__Host-session`).
    pub cookie_name: String,
}

impl SessionSettings {
    /// A verifier for the tokens these settings sign.
    pub fn verifier(&self) -> Verifier {
        Verifier::new([self.secret.expose_secret().as_bytes()], &self.issuer)
            .expect("the configuration checked the key's length")
            .with_cookie_name(&self.cookie_name)
    }
}

/// Signs sessions. Built once per cold start.
#[derive(Clone)]
pub struct Sessions {
    key: EncodingKey,
    header: Header,
    ttl: Duration,
    issuer: String,
    cookie_name: String,
}

impl Sessions {
    pub fn new(settings: &SessionSettings) -> Self {
        let secret = settings.secret.expose_secret().as_bytes();
        Self {
            key: EncodingKey::from_secret(secret),
            header: Header {
                kid: Some(key_id(secret)),
                ..Header::new(Algorithm::HS256)
            },
            ttl: settings.ttl,
            issuer: settings.issuer.clone(),
            cookie_name: settings.cookie_name.clone(),
        }
    }

    /// The `set-cookie` value carrying a fresh token for the user:
    /// `<name>=<jwt>; Path=/; Max-Age=<ttl>; HttpOnly; Secure; SameSite=Lax`. `name` is the
    /// user's display name (the mobile, for a user who registered here); `version` the user's
    /// session version, as the store's item holds it.
    pub fn cookie_for(
        &self,
        user_id: Uuid,
        mobile: &Mobile,
        name: &str,
        version: u64,
        now: SystemTime,
    ) -> Result<SecretString, SessionError> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: user_id.to_string(),
            name: name.to_owned(),
            mobile: mobile.as_str().to_owned(),
            iat,
            exp: iat + self.ttl.as_secs(),
            iss: self.issuer.clone(),
            jti: Uuid::now_v7().to_string(),
            sv: version,
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| SessionError(format!("{:?}", e.kind())))?;
        Ok(SecretString::from(format!(
            "{}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
            self.cookie_name,
            self.ttl.as_secs()
        )))
    }

    /// The `set-cookie` value that deletes the session cookie, with the attributes a `__Host-`
    /// cookie must carry for the browser to accept the deletion.
    pub fn clear_cookie(&self) -> SecretString {
        SecretString::from(format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
            self.cookie_name
        ))
    }

    /// How long the store must keep a user's version: longer than any token issued now lives.
    pub fn version_keep(&self) -> Duration {
        self.ttl + Duration::from_secs(LEEWAY_SECONDS)
    }
}

/// The clock skew tolerated on `exp`, in seconds (the same in the Flask hook).
pub const LEEWAY_SECONDS: u64 = 60;

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no session key given")]
    NoKeys,
    #[error("session key {0} is shorter than 32 bytes")]
    TooShort(usize),
}

/// Why a session was refused. No variant carries the token or a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("no session cookie")]
    NoCookie,
    /// Not three base64url parts with a JSON header (an `alg` the library does not know, such
    /// as `none`, lands here too).
    #[error("not a JWT")]
    Malformed,
    #[error("the token is not signed with HS256")]
    Algorithm,
    #[error("the token's kid names no key this verifier holds")]
    UnknownKey,
    #[error("the signature does not match")]
    Signature,
    #[error("the session has expired")]
    Expired,
    #[error("the token was issued by someone else")]
    Issuer,
    #[error("the token's claims are not a session's")]
    Claims,
    /// Logged out, on this device or everywhere, or the account was disabled or its password
    /// changed or reset since the token was issued.
    #[error("the session was ended")]
    Ended,
    /// The session store holds no record of the user: it lost its data (a flush, a failover).
    /// Refused, since nothing can say the token was not ended; logging in again rewrites it.
    #[error("the session's state is unknown")]
    StateUnknown,
    /// The session store could not be asked: refused, never accepted unchecked.
    #[error("the session store is unavailable")]
    StoreUnavailable,
}

/// Verifies sessions, for this or any other Rust service. Holds one or more keys: during a
/// rotation the current and the previous one (docs/sessions.md). A token's header `kid` picks
/// the key; a token without `kid` (signed before the header carried one) is tried against each
/// key; an unknown `kid` is refused without trying any. Only HS256 is accepted; `exp` (with
/// [`LEEWAY_SECONDS`]) and `iss` are checked, and every claim of [`Claims`] must be present.
pub struct Verifier {
    keys: Vec<(String, DecodingKey)>,
    validation: Validation,
    cookie_name: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.kids())
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier holding `secrets` (order does not matter; duplicates are kept once) for tokens
    /// whose `iss` is `issuer`, reading the cookie `__Host-session`.
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = &'a [u8]>,
        issuer: &str,
    ) -> Result<Self, KeyError> {
        let mut keys: Vec<(String, DecodingKey)> = Vec::new();
        for (i, secret) in secrets.into_iter().enumerate() {
            if secret.len() < MIN_KEY_BYTES {
                return Err(KeyError::TooShort(i));
            }
            let kid = key_id(secret);
            if !keys.iter().any(|(k, _)| *k == kid) {
                keys.push((kid, DecodingKey::from_secret(secret)));
            }
        }
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(Self {
            keys,
            validation,
            cookie_name: "__Host-session".into(),
        })
    }

    /// Reads the session from the cookie `name` instead (`SESSION_COOKIE_NAME`).
    pub fn with_cookie_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.cookie_name);
        self
    }

    /// The ids of the keys held.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|(kid, _)| kid.as_str()).collect()
    }

    /// Verifies the session in a `Cookie` request header (`a=b; __Host-session=<jwt>`); a
    /// `set-cookie` value works too. The first cookie of the name counts.
    pub fn verify_cookie(&self, cookie_header: &str) -> Result<Claims, VerifyError> {
        let token = cookie_header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie_name)
            .map(|(_, value)| value.trim().trim_matches('"'))
            .filter(|value| !value.is_empty())
            .ok_or(VerifyError::NoCookie)?;
        self.verify(token)
    }

    /// [`Verifier::verify_cookie`], then asks `store` whether the session was ended since: one
    /// round trip, never cached. What every service accepting the cookie should call.
    pub async fn verify_cookie_live<S: SessionStore>(
        &self,
        cookie_header: &str,
        store: &S,
    ) -> Result<Claims, VerifyError> {
        let claims = self.verify_cookie(cookie_header)?;
        still_open(claims, store).await.map_err(|e| match e {
            LiveError::Ended(e) => e,
            LiveError::Store(_) => VerifyError::StoreUnavailable,
        })
    }

    /// Verifies a bare token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(VerifyError::Algorithm);
        }
        let candidates: Vec<&DecodingKey> = match header.kid.as_deref() {
            Some(kid) => {
                let found: Vec<_> = self
                    .keys
                    .iter()
                    .filter(|(k, _)| k == kid)
                    .map(|(_, key)| key)
                    .collect();
                if found.is_empty() {
                    return Err(VerifyError::UnknownKey);
                }
                found
            }
            None => self.keys.iter().map(|(_, key)| key).collect(),
        };
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                // Another key may have signed it (only possible without a kid).
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                // The signature matched this key: what is wrong is the token's content.
                Err(e) => {
                    return Err(match e.kind() {
                        ErrorKind::ExpiredSignature => VerifyError::Expired,
                        ErrorKind::InvalidIssuer => VerifyError::Issuer,
                        ErrorKind::InvalidAlgorithm => VerifyError::Algorithm,
                        ErrorKind::MissingRequiredClaim(_)
                        | ErrorKind::InvalidClaimFormat(_)
                        | ErrorKind::Json(_) => VerifyError::Claims,
                        _ => VerifyError::Malformed,
                    });
                }
            }
        }
        Err(VerifyError::Signature)
    }
}

/// Why a signed, unexpired token was refused by its store.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// [`VerifyError::Ended`] or [`VerifyError::StateUnknown`].
    #[error(transparent)]
    Ended(VerifyError),
    #[error(transparent)]
    Store(#[from] SessionStoreError),
}

/// The claims again if `store` says their session was not ended: this token not logged out, and
/// its `sv` at least the user's current version.
pub async fn still_open<S: SessionStore>(claims: Claims, store: &S) -> Result<Claims, LiveError> {
    let standing = store.standing(&claims.jti, &claims.sub).await?;
    if standing.admits(claims.sv) {
        Ok(claims)
    } else if standing.version.is_none() && !standing.token_ended {
        Err(LiveError::Ended(VerifyError::StateUnknown))
    } else {
        Err(LiveError::Ended(VerifyError::Ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings(ttl_secs: u64) -> SessionSettings {
        SessionSettings {
            secret: SecretString::from(SECRET),
            ttl: Duration::from_secs(ttl_secs),
            issuer: "ihome".into(),
            cookie_name: "__Host-session".into(),
        }
    }

    #[test]
    fn cookie_carries_a_verifiable_token_with_every_claim() {
        let sessions = Sessions::new(&settings(600));
        let user_id = Uuid::now_v7();
        let mobile = Mobile::parse("13812345678").unwrap();
        let now = SystemTime::now();
        let cookie = sessions
            .cookie_for(user_id, &mobile, mobile.as_str(), 3, now)
            .unwrap();
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
        assert_eq!(claims.sv, 3);
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

    // --- Verifier

    const OLD: &[u8] = b"the previous key, thirty-two bytes long";
    const NEW: &[u8] = b"the current key, also over 32 bytes long";
    const OTHER: &[u8] = b"a key no verifier here holds, 32+ bytes";

    fn claims(iss: &str, exp_from_now: i64) -> Claims {
        let now = jsonwebtoken::get_current_timestamp();
        Claims {
            sub: Uuid::now_v7().to_string(),
            name: "13812345678".into(),
            mobile: "13812345678".into(),
            iat: now,
            exp: now.saturating_add_signed(exp_from_now),
            iss: iss.into(),
            jti: Uuid::now_v7().to_string(),
            sv: 0,
        }
    }

    /// A token as the signer makes it, with `kid` = `kid_of`'s id (None: no kid at all).
    fn token(alg: Algorithm, key: &[u8], kid_of: Option<&[u8]>, claims: &Claims) -> String {
        let header = Header {
            kid: kid_of.map(key_id),
            ..Header::new(alg)
        };
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
    }

    fn both() -> Verifier {
        Verifier::new([OLD, NEW], "ihome").unwrap()
    }

    #[test]
    fn verifies_a_cookie_the_signer_issued() {
        let user_id = Uuid::now_v7();
        let mobile = Mobile::parse("13812345678").unwrap();
        let cookie = Sessions::new(&settings(86_400))
            .cookie_for(user_id, &mobile, mobile.as_str(), 0, SystemTime::now())
            .unwrap();
        let verifier = Verifier::new([OLD, SECRET.as_bytes()], "ihome").unwrap();
        let claims = verifier.verify_cookie(cookie.expose_secret()).unwrap();
        assert_eq!(claims.sub, user_id.to_string());
        assert_eq!(claims.mobile, "13812345678");
        assert_eq!(claims.iss, "ihome");
        // As a browser sends it back, among other cookies.
        let token = cookie.expose_secret()["__Host-session=".len()..]
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let header = format!("theme=dark; __Host-session={token}; lang=zh");
        assert_eq!(verifier.verify_cookie(&header).unwrap(), claims);
        assert_eq!(
            verifier.verify_cookie("theme=dark; session=abc"),
            Err(VerifyError::NoCookie)
        );
        assert_eq!(verifier.verify_cookie(""), Err(VerifyError::NoCookie));
        let renamed = Verifier::new([SECRET.as_bytes()], "ihome")
            .unwrap()
            .with_cookie_name("sid");
        assert_eq!(
            renamed.verify_cookie(&format!("sid={token}")).unwrap(),
            claims
        );
    }

    #[test]
    fn the_kid_picks_the_key_among_old_and_new() {
        for key in [OLD, NEW] {
            let c = claims("ihome", 600);
            let t = token(Algorithm::HS256, key, Some(key), &c);
            assert_eq!(both().verify(&t), Ok(c));
        }
        // Holding only the key the kid does not name: refused without a try.
        let t = token(Algorithm::HS256, NEW, Some(NEW), &claims("ihome", 600));
        let only_old = Verifier::new([OLD], "ihome").unwrap();
        assert_eq!(only_old.verify(&t), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn a_token_without_kid_is_tried_against_each_key() {
        for key in [OLD, NEW] {
            let c = claims("ihome", 600);
            let t = token(Algorithm::HS256, key, None, &c);
            assert!(jsonwebtoken::decode_header(&t).unwrap().kid.is_none());
            assert_eq!(both().verify(&t), Ok(c));
        }
        let t = token(Algorithm::HS256, OTHER, None, &claims("ihome", 600));
        assert_eq!(both().verify(&t), Err(VerifyError::Signature));
    }

    #[test]
    fn an_unknown_kid_is_refused() {
        let t = token(Algorithm::HS256, OTHER, Some(OTHER), &claims("ihome", 600));
        assert_eq!(both().verify(&t), Err(VerifyError::UnknownKey));
        // Even when a held key signed it: the kid binds the key.
        let t = token(Algorithm::HS256, NEW, Some(OTHER), &claims("ihome", 600));
        assert_eq!(both().verify(&t), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn a_known_kid_with_another_keys_signature_is_refused() {
        // Signed with OLD but naming NEW: only NEW is tried.
        let t = token(Algorithm::HS256, OLD, Some(NEW), &claims("ihome", 600));
        assert_eq!(both().verify(&t), Err(VerifyError::Signature));
        // Signed by an outsider claiming a held key's id.
        let t = token(Algorithm::HS256, OTHER, Some(NEW), &claims("ihome", 600));
        assert_eq!(both().verify(&t), Err(VerifyError::Signature));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let c = claims("ihome", 600);
        let t = token(Algorithm::HS256, NEW, Some(NEW), &c);
        let parts: Vec<&str> = t.split('.').collect();
        let mut forged = c;
        forged.sub = Uuid::now_v7().to_string();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let t = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(both().verify(&t), Err(VerifyError::Signature));
    }

    #[test]
    fn only_hs256_is_accepted() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let c = claims("ihome", 600);
        // The same key under HS384 and HS512: a valid MAC, but not the algorithm sessions use.
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let t = token(alg, NEW, Some(NEW), &c);
            assert_eq!(both().verify(&t), Err(VerifyError::Algorithm), "{alg:?}");
        }
        // alg "none", unsigned, with and without a signature part: refused before any key.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#.to_owned(),
            format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key_id(NEW)),
        ] {
            let header = URL_SAFE_NO_PAD.encode(header);
            for t in [
                format!("{header}.{payload}."),
                format!("{header}.{payload}"),
            ] {
                assert_eq!(both().verify(&t), Err(VerifyError::Malformed));
            }
        }
        // RS256 named in the header over an HMAC: refused as an algorithm, not tried as HMAC.
        let hs = token(Algorithm::HS256, NEW, Some(NEW), &c);
        let parts: Vec<&str> = hs.split('.').collect();
        let rs = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#,
            key_id(NEW)
        ));
        let t = format!("{rs}.{}.{}", parts[1], parts[2]);
        assert_eq!(both().verify(&t), Err(VerifyError::Algorithm));
        for junk in ["", "abc", "a.b.c", "..."] {
            assert_eq!(both().verify(junk), Err(VerifyError::Malformed), "{junk}");
        }
    }

    #[test]
    fn exp_is_checked_with_a_minute_of_leeway() {
        let expired = claims("ihome", -(LEEWAY_SECONDS as i64) - 5);
        let t = token(Algorithm::HS256, OLD, Some(OLD), &expired);
        assert_eq!(both().verify(&t), Err(VerifyError::Expired));
        // Also without a kid (the right key found, then the expiry reported).
        let t = token(Algorithm::HS256, NEW, None, &expired);
        assert_eq!(both().verify(&t), Err(VerifyError::Expired));
        let skewed = claims("ihome", -5);
        let t = token(Algorithm::HS256, OLD, Some(OLD), &skewed);
        assert_eq!(both().verify(&t), Ok(skewed));
    }

    #[test]
    fn iss_is_checked() {
        let t = token(Algorithm::HS256, NEW, Some(NEW), &claims("elsewhere", 600));
        assert_eq!(both().verify(&t), Err(VerifyError::Issuer));
        let other_issuer = Verifier::new([NEW], "staging").unwrap();
        let t = token(Algorithm::HS256, NEW, Some(NEW), &claims("ihome", 600));
        assert_eq!(other_issuer.verify(&t), Err(VerifyError::Issuer));
    }

    #[test]
    fn every_claim_must_be_present() {
        let mut c = serde_json::to_value(claims("ihome", 600)).unwrap();
        for field in ["iss", "sub", "jti", "exp"] {
            let mut partial = c.clone();
            partial.as_object_mut().unwrap().remove(field);
            let t = jsonwebtoken::encode(
                &Header {
                    kid: Some(key_id(NEW)),
                    ..Header::new(Algorithm::HS256)
                },
                &partial,
                &EncodingKey::from_secret(NEW),
            )
            .unwrap();
            assert_eq!(both().verify(&t), Err(VerifyError::Claims), "{field}");
        }
        c["sub"] = serde_json::json!(42);
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(NEW),
        )
        .unwrap();
        assert_eq!(both().verify(&t), Err(VerifyError::Claims));
    }

    #[test]
    fn keys_are_checked_and_never_shown() {
        assert_eq!(
            Verifier::new(std::iter::empty::<&[u8]>(), "ihome").err(),
            Some(KeyError::NoKeys)
        );
        assert_eq!(
            Verifier::new([NEW, b"short".as_slice()], "ihome").err(),
            Some(KeyError::TooShort(1))
        );
        let v = Verifier::new([OLD, NEW, OLD], "ihome").unwrap();
        assert_eq!(v.kids(), [key_id(OLD), key_id(NEW)]);
        let shown = format!("{v:?}");
        assert!(shown.contains(&key_id(NEW)), "{shown}");
        for key in [OLD, NEW] {
            let key = std::str::from_utf8(key).unwrap();
            assert!(!shown.contains(key) && !shown.contains(&key[..8]));
        }
    }
}
