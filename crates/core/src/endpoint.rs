//! Where requests go: the endpoint URL template.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{CurrencyCode, Error};

/// A URL template with a `{base}` placeholder, such as
/// `http://127.0.0.1:8080/rates?base={base}&symbols={symbols}`.
///
/// `{symbols}` is optional; it becomes the comma-separated symbols of the
/// [`Config`](crate::Config). Both `http://` and `https://` are accepted (default ports 80
/// and 443); for `https://` the clients verify the server's certificate
/// against the public roots and [`Config::ca_cert_pem`](crate::Config::ca_cert_pem).
///
/// ```
/// use rates_core::Endpoint;
/// let e: Endpoint = "http://127.0.0.1:8080/latest?from={base}".parse()?;
/// assert_eq!(e.host(), "127.0.0.1");
/// assert_eq!(e.port(), 8080);
/// let e: Endpoint = "https://api.vatcomply.com/rates?base={base}".parse()?;
/// assert!(e.is_https());
/// assert_eq!(e.port(), 443);
/// # Ok::<(), rates_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint {
    template: String,
    host: String,
    port: u16,
    /// `https://` rather than `http://`.
    tls: bool,
    /// Index in `template` where the path begins.
    path_start: usize,
}

impl Endpoint {
    /// Parses a template.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) naming the template when it
    /// is not `http[s]://host[:port]/path...` with a `{base}` placeholder.
    pub fn parse(template: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "invalid endpoint `{template}`: {why}; expected a template like \
                 http://127.0.0.1:8080/rates?base={{base}}"
            ))
        };
        let (tls, rest) = match (
            template.strip_prefix("http://"),
            template.strip_prefix("https://"),
        ) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            (None, None) => return Err(bad("it must start with http:// or https://")),
        };
        if !template.contains("{base}") {
            return Err(bad("it has no {base} placeholder"));
        }
        if let Some(c) = template
            .chars()
            .find(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(&format!(
                "it contains {:?}, which a URL cannot carry: write spaces as %20",
                c
            )));
        }
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| bad(&format!("`{p}` is not a port number")))?;
                if port == 0 {
                    return Err(bad(
                        "port 0 is not a port a server listens on: give its real port",
                    ));
                }
                (h, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        if host.contains("{base}") {
            return Err(bad("{base} must be in the path or query, not the host"));
        }
        Ok(Self {
            template: template.to_owned(),
            host: host.to_owned(),
            port,
            tls,
            path_start: template.len() - rest.len() + authority_len,
        })
    }

    /// Whether it is an `https://` endpoint.
    pub fn is_https(&self) -> bool {
        self.tls
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The host to connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header value (`host:port`).
    pub fn authority(&self) -> &str {
        let start = self.scheme().len() + "://".len();
        &self.template[start..self.path_start]
    }

    /// The template as given.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The path and query for `base` (always starting with `/`).
    pub fn path_and_query(&self, base: CurrencyCode, symbols: &[CurrencyCode]) -> String {
        let tail = &self.template[self.path_start..];
        let mut out = String::with_capacity(tail.len() + 1 + 4 * symbols.len());
        if !tail.starts_with('/') {
            out.push('/');
        }
        fill(&mut out, tail, base, symbols);
        out
    }

    /// The full URL for `base`.
    pub fn url(&self, base: CurrencyCode, symbols: &[CurrencyCode]) -> String {
        let tail = &self.template[self.path_start..];
        let mut out = String::with_capacity(self.template.len() + 1 + 4 * symbols.len());
        out.push_str(&self.template[..self.path_start]);
        if !tail.starts_with('/') {
            out.push('/');
        }
        fill(&mut out, tail, base, symbols);
        out
    }
}

/// Appends `tail` to `out` with `{base}` and `{symbols}` filled in, in one
/// pass (this runs once per request).
fn fill(out: &mut String, tail: &str, base: CurrencyCode, symbols: &[CurrencyCode]) {
    let mut rest = tail;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        if let Some(r) = after.strip_prefix("{base}") {
            out.push_str(base.as_str());
            rest = r;
        } else if let Some(r) = after.strip_prefix("{symbols}") {
            for (i, s) in symbols.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(s.as_str());
            }
            rest = r;
        } else {
            out.push('{');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Endpoint {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::parse(&s)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.template
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.template)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> CurrencyCode {
        s.parse().unwrap()
    }

    #[test]
    fn endpoint_fills_base_and_symbols() {
        let e = Endpoint::parse("http://localhost:9/rates?base={base}&symbols={symbols}").unwrap();
        assert_eq!(e.host(), "localhost");
        assert_eq!(e.port(), 9);
        assert_eq!(e.authority(), "localhost:9");
        assert_eq!(
            e.url(code("USD"), &[code("EUR"), code("PLN")]),
            "http://localhost:9/rates?base=USD&symbols=EUR,PLN"
        );
        let e = Endpoint::parse("http://example.com?base={base}").unwrap();
        assert_eq!(e.port(), 80);
        assert_eq!(e.path_and_query(code("EUR"), &[]), "/?base=EUR");
        assert_eq!(e.url(code("EUR"), &[]), "http://example.com/?base=EUR");
        // Other braces stay as they are; placeholders may repeat.
        let e = Endpoint::parse("http://h/{x}/{base}?b={base}&s={symbols}&{").unwrap();
        assert_eq!(
            e.path_and_query(code("USD"), &[code("EUR")]),
            "/{x}/USD?b=USD&s=EUR&{"
        );
        let e = Endpoint::parse("http://[::1]:81/latest?from={base}").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 81));
        assert!(!e.is_https());
    }

    #[test]
    fn https_endpoints_default_to_port_443() {
        let e = Endpoint::parse("https://api.frankfurter.dev/v1/latest?base={base}").unwrap();
        assert!(e.is_https());
        assert_eq!((e.host(), e.port()), ("api.frankfurter.dev", 443));
        assert_eq!(e.authority(), "api.frankfurter.dev");
        assert_eq!(
            e.url(code("USD"), &[]),
            "https://api.frankfurter.dev/v1/latest?base=USD"
        );
        let e = Endpoint::parse("https://[::1]:8443/rates?base={base}").unwrap();
        assert_eq!(
            (e.host(), e.port(), e.authority()),
            ("::1", 8443, "[::1]:8443")
        );
        assert_eq!(e.path_and_query(code("EUR"), &[]), "/rates?base=EUR");
    }

    #[test]
    fn endpoint_errors_name_the_input() {
        for bad in [
            "ftp://x/{base}",
            "https://x:443x/{base}",
            "https:///{base}",
            "http://x/rates",
            "http://x:99999/{base}",
            "http:///{base}",
            "http://127.0.0.1:0/rates?base={base}",
            "http://127.0.0.1:8080/rates?base={base} &x=1",
            "http://127.0.0.1:8080/rates?base={base}\n",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(err.is_invalid_input());
            assert!(err.to_string().contains(bad), "{err}");
        }
        let zero = Endpoint::parse("http://127.0.0.1:0/rates?base={base}").unwrap_err();
        assert!(zero.to_string().contains("port 0"), "{zero}");
        let space = Endpoint::parse("http://h/rates?base={base} x").unwrap_err();
        assert!(space.to_string().contains("%20"), "{space}");
    }
}
