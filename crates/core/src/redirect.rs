//! Following redirects: where a `Location` points, judged against the
//! endpoint's origin.

use crate::{Endpoint, Error, ErrorKind};

/// The most redirects followed for one base; one more fails it.
pub const MAX_REDIRECTS: u32 = 5;

/// Whether `status` is a redirect the client follows: 301, 302, 307, 308.
/// (A GET stays a GET for all four.)
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 307 | 308)
}

/// The path and query a redirect from `current` (a path and query on
/// `endpoint`'s origin) to `location` asks for.
///
/// `location` may be an absolute URL on the same origin (scheme, host and
/// port, the default port written or not), an absolute path (`/v1/rates`),
/// or a path relative to `current`'s folder.
///
/// # Errors
/// A redirect with no `Location`; from `https` to `http` (never followed:
/// it would send the request in the clear); to another origin (not
/// followed: every strategy keeps its connections to the endpoint's origin;
/// the message names the new URL to configure instead).
pub fn resolve(
    endpoint: &Endpoint,
    status: u16,
    current: &str,
    location: Option<&str>,
) -> Result<String, Error> {
    let refuse = |why: String| Err(Error::new(ErrorKind::Status(status), why));
    let Some(location) = location.map(str::trim).filter(|l| !l.is_empty()) else {
        return refuse(format!("HTTP {status} redirect without a Location header"));
    };
    if let Some((scheme, rest)) = location.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        if endpoint.is_https() && scheme == "http" {
            return refuse(format!(
                "HTTP {status} redirect from https to http ({location}) refused: it would \
                 send the request unencrypted"
            ));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let (host, port) = split_authority(authority, default_port);
        let same = scheme == endpoint.scheme()
            && host.eq_ignore_ascii_case(
                endpoint
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']'),
            )
            && port == Some(endpoint.port());
        if !same {
            return refuse(format!(
                "HTTP {status} redirect to another origin ({location}) is not followed: \
                 set the endpoint to that URL instead"
            ));
        }
        return Ok(if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        });
    }
    if location.starts_with('/') {
        return Ok(location.to_owned());
    }
    // Relative to the current path's folder (its query dropped).
    let path = current.split('?').next().unwrap_or("/");
    let folder = &path[..=path.rfind('/').unwrap_or(0)];
    Ok(format!("{folder}{location}"))
}

/// `host[:port]` or `[v6][:port]` into the host (brackets removed) and the
/// port (the default when none is written; `None` when it is not a number).
fn split_authority(authority: &str, default_port: u16) -> (&str, Option<u16>) {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (rest, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok(),
        None => Some(default_port),
    };
    (host, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    #[test]
    fn paths_and_same_origin_urls_are_followed() {
        let e = ep("http://127.0.0.1:8080/rates?base={base}");
        let cur = "/rates?base=USD";
        assert_eq!(
            resolve(&e, 301, cur, Some("/v1/rates?base=USD")).unwrap(),
            "/v1/rates?base=USD"
        );
        assert_eq!(
            resolve(
                &e,
                308,
                cur,
                Some("http://127.0.0.1:8080/v2/rates?base=USD")
            )
            .unwrap(),
            "/v2/rates?base=USD"
        );
        assert_eq!(
            resolve(&e, 302, "/api/rates?base=USD", Some("latest?base=USD")).unwrap(),
            "/api/latest?base=USD"
        );
        let tls = ep("https://api.example.org/latest?from={base}");
        assert_eq!(
            resolve(
                &tls,
                307,
                cur,
                Some("https://API.example.org:443/v1/latest?from=USD")
            )
            .unwrap(),
            "/v1/latest?from=USD"
        );
        let v6 = ep("http://[::1]:9000/rates?base={base}");
        assert_eq!(
            resolve(&v6, 301, cur, Some("http://[::1]:9000/moved")).unwrap(),
            "/moved"
        );
    }

    #[test]
    fn downgrades_other_origins_and_missing_locations_are_refused() {
        let tls = ep("https://api.example.org/latest?from={base}");
        let e = resolve(&tls, 301, "/", Some("http://api.example.org/latest")).unwrap_err();
        assert!(e.to_string().contains("from https to http"), "{e}");
        assert_eq!(e.status_code(), Some(301));
        assert!(!e.is_retryable());
        let e = resolve(&tls, 302, "/", Some("https://other.example.org/")).unwrap_err();
        assert!(e.to_string().contains("another origin"), "{e}");
        let e = resolve(&tls, 302, "/", Some("https://api.example.org:8443/")).unwrap_err();
        assert!(e.to_string().contains("another origin"), "{e}");
        let e = resolve(&tls, 307, "/", None).unwrap_err();
        assert!(e.to_string().contains("without a Location"), "{e}");
    }
}
