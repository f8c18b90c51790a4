//! The blocking client: ureq 3 with keep-alive, timeouts, a body cap, TLS
//! (ureq's rustls support), and HTTP statuses returned as values.

use std::io;
use std::net::{IpAddr, SocketAddr};

use rates_core::{Config, CurrencyCode, Error, ErrorKind, Outcome, RawResponse, Throttle};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::parse_retry_after;

/// A blocking HTTP client configured from a [`Config`]. Cheap to clone: clones
/// share one keep-alive pool.
#[derive(Clone, Debug)]
pub struct BlockingClient {
    agent: ureq::Agent,
    max_body: u64,
    /// A config the client cannot work with (an unreadable CA certificate):
    /// every request fails with it.
    setup_error: Option<Error>,
}

impl BlockingClient {
    /// A client whose pool keeps up to `idle_connections` idle connections
    /// for reuse (use the number of threads that will share it).
    ///
    /// `https://` endpoints are verified against Mozilla's roots plus
    /// [`Config::ca_cert_pem`]. A CA certificate that cannot be read makes
    /// every request fail with [`ErrorKind::InvalidInput`].
    pub fn new(config: &Config, idle_connections: usize) -> Self {
        let (roots, setup_error) = match root_certs(config) {
            Ok(roots) => (roots, None),
            Err(e) => (ureq::tls::RootCerts::WebPki, Some(e)),
        };
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(roots)
            .build();
        let config_ = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.request_timeout))
            .max_idle_connections(idle_connections.max(1))
            .max_idle_connections_per_host(idle_connections.max(1))
            .max_redirects(0)
            .user_agent(crate::USER_AGENT)
            // ureq's 128 KiB default buffers are zero-filled per connection:
            // 256 KiB resident each, which dominates one-connection-per-base
            // strategies. A rates answer is a few hundred bytes.
            .input_buffer_size(16 * 1024)
            .output_buffer_size(16 * 1024)
            .build();
        let agent =
            ureq::Agent::with_parts(config_, DefaultConnector::new(), LiteralFirst::default());
        Self {
            agent,
            max_body: u64::try_from(config.max_body_bytes).unwrap_or(u64::MAX),
            setup_error,
        }
    }

    /// Sends one GET and returns the status, `Retry-After` and (for 2xx) the
    /// body, read up to the cap.
    ///
    /// # Errors
    /// Timeout, connection (refused, reset, truncated), TLS (a certificate
    /// not trusted, a failed handshake: [`ErrorKind::Tls`]) and
    /// body-too-large errors; HTTP statuses are values, not errors.
    pub fn get(&self, url: &str) -> Result<RawResponse, Error> {
        if let Some(e) = &self.setup_error {
            return Err(e.clone());
        }
        let mut response = self.agent.get(url).call().map_err(|e| classify(&e, url))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.body_mut().with_config().limit(self.max_body);
        let body = if (200..300).contains(&status) {
            body.read_to_vec().map_err(|e| classify(&e, url))?
        } else {
            // Drain a small error body so the connection can be reused; its
            // content does not matter.
            let _ = body.read_to_vec();
            Vec::new()
        };
        Ok(RawResponse {
            status,
            retry_after,
            body,
        })
    }

    /// Runs the whole attempt loop for `base` on this thread (throttle,
    /// retries, backoff), using this client.
    pub fn fetch(
        &self,
        base: CurrencyCode,
        config: &Config,
        throttle: Option<&Throttle>,
    ) -> Outcome {
        rates_core::fetch_blocking(base, config, throttle, |url| self.get(url))
    }
}

/// Mozilla's roots (ureq's default), plus the config's CA certificates when
/// it has any: ureq takes either its built-in list or a list of our own, so
/// adding one means listing Mozilla's too.
fn root_certs(config: &Config) -> Result<ureq::tls::RootCerts, Error> {
    use ureq::tls::{Certificate, RootCerts};
    let extra = crate::tls::extra_roots(config)?;
    if extra.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    let public = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()));
    let extra = extra
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned());
    Ok(RootCerts::from(public.chain(extra)))
}

/// Resolves IP-literal hosts (`127.0.0.1`, `[::1]`) directly and others
/// with ureq's default resolver. With a timeout configured, the default
/// resolver starts a thread for every request, even on a kept-alive
/// connection; for a literal there is nothing to look up.
#[derive(Default)]
struct LiteralFirst(DefaultResolver);

impl std::fmt::Debug for LiteralFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiteralFirst")
    }
}

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let literal = uri.authority().and_then(|a| {
            let ip: IpAddr = a.host().trim_matches(['[', ']']).parse().ok()?;
            let default_port = if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            };
            Some(SocketAddr::new(ip, a.port_u16().unwrap_or(default_port)))
        });
        match literal {
            Some(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// Turns a ureq error for a request to `url` into ours: a TLS failure is
/// [`ErrorKind::Tls`] (never retried), however ureq wraps it.
fn classify(e: &ureq::Error, url: &str) -> Error {
    use ureq::Error as U;
    let rustls = match e {
        U::Rustls(r) => Some(r),
        U::Io(io) => crate::tls::rustls_error(io),
        _ => None,
    };
    if let Some(r) = rustls {
        let authority = url.split_once("://").map_or(url, |(_, rest)| {
            rest.split(['/', '?']).next().unwrap_or(rest)
        });
        return crate::tls::error(authority, r);
    }
    let kind = match e {
        U::Timeout(_) | U::BodyStalled => ErrorKind::Timeout,
        U::BodyExceedsLimit(_) => ErrorKind::BodyTooLarge,
        U::Io(io) if io.kind() == io::ErrorKind::TimedOut => ErrorKind::Timeout,
        U::BadUri(_) | U::Http(_) => ErrorKind::InvalidInput,
        _ => ErrorKind::Connection,
    };
    let message = match e {
        U::BodyExceedsLimit(limit) => {
            format!("the response body is larger than the {limit}-byte cap (raise max_body_bytes)")
        }
        U::ConnectionFailed | U::HostNotFound => format!("could not connect: {e}"),
        _ => e.to_string(),
    };
    Error::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_hosts_resolve_without_a_lookup() {
        let config = ureq::Agent::config_builder().build();
        // A timeout is set, as in the client: ureq would start a thread.
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::Exact(
                std::time::Duration::from_secs(1),
            ),
            ..NextTimeout::default()
        };
        let r = LiteralFirst::default();
        for (uri, want) in [
            ("http://127.0.0.1:9/x", "127.0.0.1:9"),
            ("http://[::1]:81/x", "[::1]:81"),
            ("http://10.1.2.3/x", "10.1.2.3:80"),
            ("https://10.1.2.3/x", "10.1.2.3:443"),
        ] {
            let got = r.resolve(&uri.parse().unwrap(), &config, timeout).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].to_string(), want);
        }
        let local = r
            .resolve(&"http://localhost:9/x".parse().unwrap(), &config, timeout)
            .unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }

    #[test]
    fn nothing_listening_is_a_connection_error() {
        // Bind then drop, so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = Config::new(&format!("http://127.0.0.1:{port}/rates?base={{base}}")).unwrap();
        let client = BlockingClient::new(&config, 1);
        let err = client
            .get(&format!("http://127.0.0.1:{port}/rates?base=USD"))
            .unwrap_err();
        assert!(err.is_connection(), "{err:?}");
    }
}
