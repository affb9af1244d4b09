//! Placeholder for werkzeug password hashes (being written on its own branch): every werkzeug
//! string is unsupported until it lands.

/// Why a stored string is not a werkzeug hash this module verifies: a format name safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// A parsed werkzeug hash.
pub struct LegacyHash<'a>(&'a str);

impl LegacyHash<'_> {
    pub fn verify(&self, _typed: &[u8]) -> bool {
        false
    }

    pub fn format(&self) -> String {
        self.0.split('$').next().unwrap_or_default().to_owned()
    }
}

/// `method$salt$hash`, werkzeug's layout.
pub fn looks_like_werkzeug(stored: &str) -> bool {
    stored.matches('$').count() == 2 && !stored.starts_with('$')
}

pub fn parse(stored: &str) -> Result<LegacyHash<'_>, Unsupported> {
    Err(Unsupported(
        stored.split('$').next().unwrap_or_default().to_owned(),
    ))
}
