//! Login CSRF: another site must not be able to sign a visitor up. The endpoint reads the body
//! whatever its content-type, so a cross-site `text/plain` form could POST JSON without a
//! preflight and, with a code the attacker holds for their own number, leave the victim's
//! browser signed in to the attacker's account. Browsers say where a request comes from; this
//! reads what they say, before the body is parsed and before any store is touched.
//!
//! A request is refused when `Sec-Fetch-Site` is `cross-site`, or when it carries an `Origin`
//! that is not allowed (`null` included): with `ALLOWED_ORIGINS` set, one not in that list; with
//! it empty (the template's default), one whose host is not the request's own `Host`, unless the
//! browser itself said `Sec-Fetch-Site: same-origin` (or `none`), which a proxy that rewrites
//! `Host` must not break. So browsers without Fetch Metadata (Safari before 16.4, old WebViews)
//! are covered by the `Origin` check either way. Requests with neither header (apps, curl,
//! servers) pass. Every route runs it: those that set a session and those that end one.

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
        let site = value("sec-fetch-site");
        if site.is_some_and(|v| v.eq_ignore_ascii_case(b"cross-site")) {
            return Err(Refusal::CrossSite);
        }
        let Some(origin) = value("origin") else {
            return Ok(());
        };
        let allowed = if self.allowed.is_empty() {
            let browser_says_same = site.is_some_and(|v| {
                v.eq_ignore_ascii_case(b"same-origin") || v.eq_ignore_ascii_case(b"none")
            });
            browser_says_same || value("host").is_some_and(|host| same_host(origin, host))
        } else {
            self.allowed
                .iter()
                .any(|a| a.as_bytes().eq_ignore_ascii_case(origin))
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::OriginNotAllowed)
        }
    }
}

/// Whether `origin` (`scheme://host[:port]`, http or https) names the host `host` (`host[:port]`),
/// case-insensitively. `null` and anything else is not.
fn same_host(origin: &[u8], host: &[u8]) -> bool {
    let rest = if origin.len() > 8 && origin[..8].eq_ignore_ascii_case(b"https://") {
        &origin[8..]
    } else if origin.len() > 7 && origin[..7].eq_ignore_ascii_case(b"http://") {
        &origin[7..]
    } else {
        return false;
    };
    !host.is_empty() && rest.eq_ignore_ascii_case(host)
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
    fn without_a_list_the_browser_s_word_or_the_request_s_own_host_decides() {
        let p = policy(&[]);
        // The browser says same-origin (a proxy may have rewritten Host): trusted.
        for site in ["same-origin", "none"] {
            let h = headers(&[
                ("sec-fetch-site", site),
                ("origin", "https://www.ihome.example"),
                ("host", "abc.execute-api.example"),
            ]);
            assert_eq!(p.check(&h), Ok(()), "{site}");
        }
        // No Fetch Metadata (Safari before 16.4, old WebViews), or same-site: the Origin must be
        // the request's own host.
        for site in [None, Some("same-site")] {
            for (origin, host, ok) in [
                ("https://www.ihome.example", "www.ihome.example", true),
                ("HTTPS://WWW.IHOME.EXAMPLE", "www.ihome.example", true),
                ("http://127.0.0.1:9000", "127.0.0.1:9000", true),
                ("https://evil.example", "www.ihome.example", false),
                (
                    "https://www.ihome.example.evil.example",
                    "www.ihome.example",
                    false,
                ),
                ("https://www.ihome.example:8443", "www.ihome.example", false),
                ("null", "www.ihome.example", false),
                ("", "www.ihome.example", false),
                ("https://www.ihome.example", "", false),
                ("ftp://www.ihome.example", "www.ihome.example", false),
            ] {
                let mut pairs = vec![("origin", origin)];
                if !host.is_empty() {
                    pairs.push(("host", host));
                }
                pairs.extend(site.map(|s| ("sec-fetch-site", s)));
                let want = if ok {
                    Ok(())
                } else {
                    Err(Refusal::OriginNotAllowed)
                };
                assert_eq!(p.check(&headers(&pairs)), want, "{origin} {host} {site:?}");
            }
        }
        // Apps, curl and servers send no Origin.
        assert_eq!(p.check(&headers(&[])), Ok(()));
        assert_eq!(p.check(&headers(&[("host", "www.ihome.example")])), Ok(()));
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
