//! TLS on the listeners (`[server] tls = { cert, key }`): rustls with the aws-lc-rs provider
//! (the one crypto stack), TLS 1.2 and 1.3 only, ALPN `h2` then `http/1.1` (RFC 7301), and
//! the certificate reloaded without dropping a connection: when its files change (checked
//! every second) or on SIGHUP ([`reload_all`]). A handshake takes the certificate current at
//! that moment; connections already open keep theirs. Files that fail to load keep the old
//! certificate in force (and say why in the log).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use gatehouse_core::config::TlsFiles;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate files are checked for a change.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The certificate of one listener, replaced when its files change.
pub struct Certificate {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// Modification times of (cert, key) when last loaded.
    stamp: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("cert", &self.files.cert)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        })
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads a PEM certificate chain and private key.
fn load(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let show = |p: &PathBuf| p.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("`{}`: {e}", show(&files.cert)))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{}`: {e}", show(&files.cert)))?;
    if chain.is_empty() {
        return Err(format!("`{}` holds no certificate", show(&files.cert)));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("`{}`: {e}", show(&files.key)))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| format!("`{}` and `{}`: {e}", show(&files.cert), show(&files.key)))
}

/// Every certificate in use, for [`reload_all`] (SIGHUP).
static LOADED: Mutex<Vec<Weak<Certificate>>> = Mutex::new(Vec::new());

impl Certificate {
    /// Loads the files; an error says which file and why.
    pub fn load(files: &TlsFiles) -> Result<Arc<Self>, String> {
        let key = load(files)?;
        let cert = Arc::new(Self {
            stamp: Mutex::new((modified(&files.cert), modified(&files.key))),
            files: files.clone(),
            current: RwLock::new(Arc::new(key)),
        });
        if let Ok(mut all) = LOADED.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&cert));
        }
        Ok(cert)
    }

    /// Loads the files again if they changed since the last load (or always, with
    /// `force`). Returns whether a new certificate is in use.
    pub fn reload(&self, force: bool) -> Result<bool, String> {
        // One reload at a time, from reading the stamps to swapping the key: a reload that
        // read the files before they changed must not swap its (older) pair in after one
        // that read them afterwards (the watch and SIGHUP's `reload_all` can run together).
        let mut stamp = match self.stamp.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = (modified(&self.files.cert), modified(&self.files.key));
        if !force && *stamp == now {
            return Ok(false);
        }
        let key = load(&self.files)?;
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(key),
            Err(p) => *p.into_inner() = Arc::new(key),
        }
        *stamp = now;
        Ok(true)
    }

    /// Checks the files every second while the certificate is in use.
    pub fn watch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                let Some(cert) = weak.upgrade() else { return };
                cert.log_reload(false);
            }
        });
    }

    fn log_reload(&self, force: bool) {
        match self.reload(force) {
            Ok(true) => {
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays in use")
            }
        }
    }

    /// The acceptor of a listener serving this certificate.
    pub fn acceptor(self: &Arc<Self>) -> Result<tokio_rustls::TlsAcceptor, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// Loads `files`, watches them, and returns the listener's acceptor.
pub fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    let cert = Certificate::load(files)?;
    cert.watch();
    cert.acceptor()
}

/// Reloads every certificate in use (SIGHUP), whether or not its files look changed.
pub fn reload_all() {
    let all: Vec<Arc<Certificate>> = LOADED
        .lock()
        .map(|l| l.iter().filter_map(Weak::upgrade).collect())
        .unwrap_or_default();
    for cert in all {
        cert.log_reload(true);
    }
}

/// Marks a request that came over TLS (request extension): its cookies get `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;
