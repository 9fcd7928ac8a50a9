//! A ledger behind TLS with a private certificate authority, as a small deployment would run
//! it (`deaddrop serve` speaks plain HTTP; a TLS terminator sits in front): a fresh CA made with
//! `rcgen`, its certificate in a PEM file for `--ca-file`, and a TLS endpoint on `127.0.0.1:0`
//! (tokio-rustls) with a certificate for the names asked for, forwarding the plaintext to a port
//! on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A TLS endpoint in front of a plain-HTTP port, with a certificate signed by a CA of its own.
pub struct TlsFront {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    ca_file: PathBuf,
    handshakes: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    rt: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    /// Starts it: a new CA, a certificate for `names` (DNS names or IP addresses) signed by it,
    /// and every accepted TLS connection forwarded to `127.0.0.1:backend`.
    pub fn start(backend: u16, names: &[&str]) -> TlsFront {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "deaddrop test private CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca, ca_key);

        let leaf_key = KeyPair::generate().expect("a server key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names).expect("server certificate parameters");
        leaf.distinguished_name
            .push(DnType::CommonName, "deaddrop test ledger");
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .expect("the server certificate");

        let dir = crate::temp_dir("deaddrop-private-ca");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("writing the CA certificate");

        let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server TLS configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("the TLS endpoint binds");
        let port = listener.local_addr().expect("an address").port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (done, failed) = (handshakes.clone(), refused.clone());
        rt.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (done, failed) = (done.clone(), failed.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(conn).await else {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    done.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) =
                        tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            port,
            ca_file,
            handshakes,
            refused,
            rt: Some(rt),
            _dir: dir,
        }
    }

    /// The PEM file with the CA's certificate (for `--ca-file`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// `https://HOST:PORT` for `host`, one of the names the certificate carries.
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// Connections that did not complete a TLS handshake (a client that distrusted the
    /// certificate, or spoke something else).
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}
