//! Login CSRF: another site must not be able to sign a visitor up. The endpoint reads the body
//! whatever its content-type, so a cross-site `text/plain` form could POST JSON without a
//! preflight and, with a code the attacker holds for their own number, leave the victim's
//! browser signed in to the attacker's account. Browsers say where a request comes from; this
//! reads what they say, before the body is parsed and before any store is touched.
//!
//! A request is refused when `Sec-Fetch-Site` is `cross-site`, or when `ALLOWED_ORIGINS` is set
//! and the request carries an `Origin` not in it (`null` included). Requests with neither header
//! (apps, curl, servers) pass, as do `same-origin`, `same-site` and `none`. Browsers without
//! `Sec-Fetch-Site` (Safari before 16.4) are covered only by `ALLOWED_ORIGINS`: set it in
//! production.

use lambda_http::http::HeaderMap;

use crate::edge::config::Config;

/// The origins a browser may register from. Built once per cold start.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Lowercase `scheme://host[:port]`; empty: any origin that is not cross-site.
    allowed: Vec<String>,
}

/// Why a request was refused, for the log line (the values are the browser's, not secrets).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    CrossSite,
    OriginNotAllowed,
}

impl OriginPolicy {
    pub fn new(config: &Config) -> Self {
        Self {
            allowed: config.allowed_origins.clone(),
        }
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let value = |name| headers.get(name).map(|v| v.as_bytes().trim_ascii());
        if value("sec-fetch-site").is_some_and(|v| v.eq_ignore_ascii_case(b"cross-site")) {
            return Err(Refusal::CrossSite);
        }
        match value("origin") {
            Some(origin) if !self.allowed.is_empty() => {
                let listed = self
                    .allowed
                    .iter()
                    .any(|a| a.as_bytes().eq_ignore_ascii_case(origin));
                if listed {
                    Ok(())
                } else {
                    Err(Refusal::OriginNotAllowed)
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn policy(allowed: &[&str]) -> OriginPolicy {
        OriginPolicy {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn cross_site_is_refused_whatever_the_list_says() {
        for p in [policy(&[]), policy(&["https://evil.example"])] {
            for site in ["cross-site", "Cross-Site", " cross-site "] {
                let h = headers(&[("sec-fetch-site", site), ("origin", "https://evil.example")]);
                assert_eq!(p.check(&h), Err(Refusal::CrossSite), "{site}");
            }
            assert_eq!(
                p.check(&headers(&[("sec-fetch-site", "cross-site")])),
                Err(Refusal::CrossSite)
            );
        }
    }

    #[test]
    fn same_origin_same_site_none_and_no_headers_pass_without_a_list() {
        let p = policy(&[]);
        for site in ["same-origin", "same-site", "none"] {
            let h = headers(&[("sec-fetch-site", site), ("origin", "https://any.example")]);
            assert_eq!(p.check(&h), Ok(()), "{site}");
        }
        assert_eq!(p.check(&headers(&[])), Ok(()));
        assert_eq!(p.check(&headers(&[("origin", "null")])), Ok(()));
    }

    #[test]
    fn with_a_list_only_listed_origins_pass() {
        let p = policy(&["https://www.ihome.example", "http://127.0.0.1:8080"]);
        for ok in [
            "https://www.ihome.example",
            "HTTPS://WWW.IHOME.EXAMPLE",
            "http://127.0.0.1:8080",
        ] {
            let h = headers(&[("sec-fetch-site", "same-origin"), ("origin", ok)]);
            assert_eq!(p.check(&h), Ok(()), "{ok}");
        }
        for bad in [
            "https://api.ihome.example",
            "http://www.ihome.example",
            "https://www.ihome.example:8443",
            "https://www.ihome.example.evil.example",
            "http://127.0.0.1",
            "null",
            "",
        ] {
            for site in [None, Some("same-site")] {
                let mut pairs = vec![("origin", bad)];
                pairs.extend(site.map(|s| ("sec-fetch-site", s)));
                assert_eq!(
                    p.check(&headers(&pairs)),
                    Err(Refusal::OriginNotAllowed),
                    "{bad} {site:?}"
                );
            }
        }
        // Apps, curl and servers send neither header.
        assert_eq!(p.check(&headers(&[])), Ok(()));
        assert_eq!(p.check(&headers(&[("sec-fetch-site", "none")])), Ok(()));
    }
}
