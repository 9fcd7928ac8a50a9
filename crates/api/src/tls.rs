//! The TLS configuration of [`LedgerClient`](crate::LedgerClient), one for its HTTP requests
//! (reqwest) and its push stream (tokio-tungstenite) alike, so an `https://` ledger that can be
//! synced can be watched too: rustls on aws-lc-rs, trusting the webpki roots (Mozilla's list,
//! compiled in; the system's certificate store is not consulted) plus the certificate
//! authorities of a PEM file the user names (`--ca-file`), for a ledger with a private CA.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::client::LedgerError;

/// The configuration every connection of a command starts from: the webpki roots and those of
/// `ca_file`. Built once per command; see [`for_one_client`] for what each client changes.
pub(crate) fn base_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, LedgerError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in ca_certificates(path)? {
            roots.add(cert).map_err(|e| LedgerError::BadCaFile {
                path: path.to_path_buf(),
                detail: format!("a certificate in it cannot be used as a trust anchor: {e}"),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LedgerError::Setup(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The configuration of one [`LedgerClient`](crate::LedgerClient): `base` with a TLS session
/// cache of its own. A shared cache would let the ledger link connections that the SOCKS
/// credentials put on different Tor circuits (a session ticket issued on one is shown on the
/// next), undoing the isolation.
pub(crate) fn for_one_client(base: &ClientConfig) -> Arc<ClientConfig> {
    let mut config = base.clone();
    config.resumption = Resumption::default();
    Arc::new(config)
}

/// Every `CERTIFICATE` of the PEM file at `path`; at least one.
fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, LedgerError> {
    let bad = |detail: String| LedgerError::BadCaFile {
        path: path.to_path_buf(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("it is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("it holds no PEM `CERTIFICATE` block".into()));
    }
    Ok(certs)
}

/// What rustls said, if `e` (or anything under it) is the ledger's certificate being refused.
pub(crate) fn certificate_refused(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    find_rustls(e, |r| matches!(r, rustls::Error::InvalidCertificate(_))).map(|r| r.to_string())
}

/// Whether `e` (or anything under it) is a TLS handshake that got something other than TLS
/// back: what an `https://` URL meets at a server that speaks plain HTTP (its answer, `HTTP/1.1
/// 400 ...`, is no TLS record: the "wrong version number" of OpenSSL).
pub(crate) fn plain_text_answer(e: &(dyn std::error::Error + 'static)) -> bool {
    find_rustls(e, |r| {
        matches!(
            r,
            rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
                    | rustls::InvalidMessage::UnknownProtocolVersion
            )
        )
    })
    .is_some()
}

/// The first rustls error in `e`'s chain that `wanted` accepts.
fn find_rustls<'a>(
    e: &'a (dyn std::error::Error + 'static),
    wanted: impl Fn(&rustls::Error) -> bool,
) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            if wanted(r) {
                return Some(r);
            }
        }
        // An io::Error shows the error it wraps but does not give it as its source (hyper
        // wraps rustls's io::Error in another): step into it.
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("deaddrop-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing to see\n").unwrap();
        let e = base_config(Some(&empty)).unwrap_err();
        assert!(matches!(&e, LedgerError::BadCaFile { path, .. } if path == &empty));
        assert!(e.to_string().contains("empty.pem"), "{e}");
        let missing = dir.join("missing.pem");
        let e = base_config(Some(&missing)).unwrap_err();
        assert!(e.to_string().contains("cannot read it"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_ca_file_the_configuration_builds() {
        let config = base_config(None).unwrap();
        // No ALPN: HTTP/1.1 for reqwest (http1_only) and for the WebSocket upgrade alike.
        assert!(config.alpn_protocols.is_empty());
        assert!(for_one_client(&config).alpn_protocols.is_empty());
    }

    #[test]
    fn a_refused_certificate_is_found_inside_an_io_error() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, refused);
        // As hyper hands it over: wrapped once more.
        let io = std::io::Error::other(io);
        assert!(certificate_refused(&io).is_some());
        let other = std::io::Error::new(std::io::ErrorKind::InvalidData, "something else");
        assert!(certificate_refused(&other).is_none());
    }
}
