//! What both clients share about TLS: the extra roots a [`Config`] trusts,
//! and how a rustls failure becomes an [`ErrorKind::Tls`] error that says
//! what to do.
//!
//! Certificates are verified against Mozilla's root store as the
//! `webpki-roots` crate ships it: compiled in, so a run gives the same
//! answer on every machine and in every container (no dependence on what
//! the OS has installed). [`Config::ca_cert_pem`] adds roots to it; nothing
//! turns verification off. Both clients use one rustls client set-up
//! ([`client_config`]).

use std::error::Error as StdError;
use std::io;

use rates_core::{Config, Error, ErrorKind};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The certificates in [`Config::ca_cert_pem`] (none when it is unset).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when the PEM holds no certificate or a broken one.
pub(crate) fn extra_roots(config: &Config) -> Result<Vec<CertificateDer<'static>>, Error> {
    let Some(pem) = &config.ca_cert_pem else {
        return Ok(Vec::new());
    };
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid_input(format!(
                "invalid CA certificate (ca_cert_pem, the trusted roots): its PEM cannot be read: {e}"
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::invalid_input(
            "invalid CA certificate (ca_cert_pem, the trusted roots): it holds no PEM certificate",
        ));
    }
    Ok(certs)
}

/// The rustls error anywhere in `e`'s chain, looking inside `io::Error`s
/// (whose `source` skips the error they wrap).
pub(crate) fn rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            if let Some(r) = rustls_error(inner) {
                return Some(r);
            }
        }
        next = e.source();
    }
    None
}

/// An [`ErrorKind::Tls`] error for a failed handshake with `authority`. A
/// certificate that is not trusted says how to trust it.
pub(crate) fn error(authority: &str, e: &rustls::Error) -> Error {
    let message = match e {
        rustls::Error::InvalidCertificate(why) => format!(
            "the TLS certificate of {authority} was not trusted ({why:?}): if the server \
             uses a private or self-signed CA (such as the embedded server's), trust that \
             certificate (ca_cert_pem, the trusted roots)"
        ),
        other => format!("the TLS handshake with {authority} failed: {other}"),
    };
    Error::new(ErrorKind::Tls, message)
}

/// The rustls client set-up both clients share: Mozilla's roots plus
/// `extra` (from [`extra_roots`]), on the `ring` provider.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a root rustls cannot use.
pub(crate) fn client_config(
    extra: &[CertificateDer<'static>],
) -> Result<std::sync::Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots.add(cert.clone()).map_err(|e| {
            Error::invalid_input(format!(
                "invalid CA certificate (ca_cert_pem, the trusted roots): rustls cannot use it as a root: {e}"
            ))
        })?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Runtime, format!("cannot set TLS up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(tls))
}

/// The name a certificate of `host` must carry.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a host that cannot be a TLS server name.
pub(crate) fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).map_err(|e| {
        Error::invalid_input(format!(
            "invalid endpoint host `{host}` for TLS: {e}; use a DNS name or an IP address"
        ))
    })
}

/// The async client's TLS set-up for `config`'s endpoint, and the name to
/// verify.
///
/// # Errors
/// As [`client_config`] and [`server_name`], and for an unreadable CA
/// certificate.
#[cfg(feature = "async")]
pub(crate) fn connector(
    config: &Config,
) -> Result<
    (
        futures_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
    Error,
> {
    let tls = client_config(&extra_roots(config)?)?;
    let name = server_name(config.endpoint.host())?;
    Ok((futures_rustls::TlsConnector::from(tls), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rustls_inside_io_errors() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = io::Error::new(io::ErrorKind::InvalidData, inner);
        let found = rustls_error(&io).unwrap();
        let err = error("127.0.0.1:1", found);
        assert!(err.is_tls() && !err.is_retryable());
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:1")
                && text.contains("not trusted")
                && text.contains("ca_cert_pem"),
            "{text}"
        );
        let plain = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert!(rustls_error(&plain).is_none());
    }

    #[test]
    fn extra_roots_name_the_problem() {
        let config = Config::new("https://127.0.0.1:1/?b={base}").unwrap();
        assert!(extra_roots(&config).unwrap().is_empty());
        let broken = config
            .with_ca_cert_pem("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
        let err = extra_roots(&broken).unwrap_err();
        assert!(
            err.is_invalid_input() && err.to_string().contains("ca_cert_pem"),
            "{err}"
        );
    }
}
