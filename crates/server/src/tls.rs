//! HTTPS for the mock server: a certificate generated at start (rcgen) or
//! one of the caller's, served with tokio-rustls on the `ring` provider.

use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How the server serves HTTPS (see [`ServerConfig::tls`](crate::ServerConfig::tls)).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerTls {
    /// A self-signed certificate generated at start, valid for `127.0.0.1`,
    /// `localhost` and `::1`. Clients trust it through
    /// [`RatesServer::certificate_pem`](crate::RatesServer::certificate_pem)
    /// (`rates serve --tls` writes it to a file).
    Generated,
    /// A certificate chain and its private key, both PEM.
    Pem {
        /// The certificate chain, leaf first.
        cert_chain: String,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: String,
    },
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Generated => f.write_str("Generated"),
            // Never print a private key.
            Self::Pem { .. } => f.write_str("Pem { .. }"),
        }
    }
}

/// The rustls configuration and the certificate chain (PEM) it presents.
pub(crate) fn acceptor(tls: &ServerTls) -> io::Result<(Arc<rustls::ServerConfig>, String)> {
    let (chain_pem, key_pem) = match tls {
        ServerTls::Generated => {
            let names = ["127.0.0.1", "localhost", "::1"].map(str::to_owned);
            let generated = rcgen::generate_simple_self_signed(names.to_vec())
                .map_err(|e| io::Error::other(format!("cannot generate a certificate: {e}")))?;
            (generated.cert.pem(), generated.signing_key.serialize_pem())
        }
        ServerTls::Pem { cert_chain, key } => (cert_chain.clone(), key.clone()),
    };
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the TLS {what} cannot be read: {e} (give PEM files, like --cert cert.pem --key key.pem)"
            ),
        )
    };
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate", &e))?;
    if chain.is_empty() {
        return Err(invalid("certificate", &"it holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| invalid("key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("certificate and key", &e))?;
    Ok((Arc::new(config), chain_pem))
}
