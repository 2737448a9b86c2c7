//! TLS on SSL and SASL_SSL listeners, with rustls (ring provider) and futures-rustls over
//! glommio's sockets. [`TlsSource`] is one listener's current rustls configuration, shared by
//! the node: a reload thread re-reads the PEM files once a second and swaps in a new
//! configuration when they change (a broken file is logged and the old one kept). Each shard
//! keeps its own copy ([`ShardTls`]) and looks at the shared one only at accept, when its
//! generation moved. The handshake runs on the shard that accepted the connection, and the
//! client certificate's subject becomes the principal through `ssl.principal.mapping.rules`.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use futures_rustls::TlsAcceptor;
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::acl::authorizer::ANONYMOUS;
use crate::config::{ClientAuth, Keystore, TlsSettings, TlsVersion, Truststore};
use crate::server::tls_socket::TlsSocket;

/// Why a TLS configuration could not be built, or a client was refused after its handshake.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A keystore or truststore file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PEM has no (unencrypted) private key, no certificate, or does not parse.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the combination (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// `ssl.cipher.suites` names a suite rustls does not have, or none usable.
    #[error("ssl.cipher.suites: {0}")]
    CipherSuites(String),
    /// The truststore cannot verify client certificates.
    #[error("ssl.truststore: {0}")]
    Truststore(String),
    /// The handshake failed or did not finish in time.
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    /// The client certificate's subject matches no `ssl.principal.mapping.rules` rule.
    #[error("no ssl.principal.mapping.rules rule matches client certificate subject {0:?}")]
    NoPrincipal(String),
    /// The client certificate cannot be parsed for its subject.
    #[error("client certificate: {0}")]
    Certificate(String),
}

/// One listener's TLS configuration, shared by every shard, reloaded when its files change.
pub struct TlsSource {
    settings: TlsSettings,
    /// Moves on every successful reload; shards compare it with the one they copied.
    generation: AtomicU64,
    current: Mutex<Arc<ServerConfig>>,
    /// (modified, length) of each watched file when `current` was built.
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

impl TlsSource {
    /// Builds the configuration now, so a bad keystore stops start-up with its reason.
    pub fn new(settings: TlsSettings) -> Result<Arc<Self>, TlsError> {
        let stamps = stamps(&settings.files());
        let config = server_config(&settings)?;
        Ok(Arc::new(Self {
            settings,
            generation: AtomicU64::new(0),
            current: Mutex::new(config),
            stamps: Mutex::new(stamps),
        }))
    }

    /// Re-reads the files if any changed since the last build; `Ok(true)` when a new
    /// configuration is in place. Runs on the reload thread.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.settings.files());
        let mut seen = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == now {
            return Ok(false);
        }
        // Remembered before building: a broken file is reported once, not every second.
        *seen = now;
        drop(seen);
        let config = server_config(&self.settings)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = config;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(true)
    }

    fn snapshot(&self) -> (u64, Arc<ServerConfig>) {
        let generation = self.generation.load(Ordering::Acquire);
        let config = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (generation, Arc::clone(&config))
    }
}

fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// How often the reload thread looks at the files.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Starts the thread that reloads the listeners' TLS files when they change; it ends when
/// the node drops the sources.
pub fn spawn_reloader(sources: &[Arc<TlsSource>]) -> std::io::Result<()> {
    if sources.is_empty() {
        return Ok(());
    }
    let weak: Vec<Weak<TlsSource>> = sources.iter().map(Arc::downgrade).collect();
    std::thread::Builder::new()
        .name("sluice-tls-reload".into())
        .spawn(move || {
            loop {
                std::thread::sleep(RELOAD_EVERY);
                let live: Vec<Arc<TlsSource>> = weak.iter().filter_map(Weak::upgrade).collect();
                if live.is_empty() {
                    return;
                }
                for source in live {
                    match source.reload_if_changed() {
                        Ok(true) => tracing::info!("TLS keystore/truststore reloaded"),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "TLS files changed but cannot be used; keeping the previous ones")
                        }
                    }
                }
            }
        })
        .map(|_| ())
}

/// A shard's copy of one listener's TLS configuration.
pub struct ShardTls {
    source: Arc<TlsSource>,
    generation: Cell<u64>,
    acceptor: RefCell<TlsAcceptor>,
    rules: crate::acl::principal_rules::PrincipalRules,
}

impl ShardTls {
    /// The shard's copy of `source`.
    pub fn new(source: Arc<TlsSource>) -> Self {
        let (generation, config) = source.snapshot();
        let rules = source.settings.principal_rules.clone();
        Self {
            source,
            generation: Cell::new(generation),
            acceptor: RefCell::new(TlsAcceptor::from(config)),
            rules,
        }
    }

    /// The acceptor for a new connection: the shared configuration's newest version.
    fn acceptor(&self) -> TlsAcceptor {
        if self.source.generation.load(Ordering::Acquire) != self.generation.get() {
            let (generation, config) = self.source.snapshot();
            self.generation.set(generation);
            *self.acceptor.borrow_mut() = TlsAcceptor::from(config);
        }
        self.acceptor.borrow().clone()
    }

    /// Runs the server handshake on `stream` within `timeout`, and names the principal: the
    /// client certificate's user by the mapping rules, or `User:ANONYMOUS` without one.
    pub async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<(Box<TlsStream<TlsSocket>>, Rc<str>), TlsError> {
        // Buffered both ways: rustls reads 4 KiB and writes one record at a time, which cost
        // a receive per 4 KiB (18% of a shard producing over TLS, measured with `perf`).
        let stream = TlsSocket::new(stream);
        let handshake = self.acceptor().accept(stream);
        let timed_out = async {
            glommio::timer::sleep(timeout).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("not complete within {timeout:?}"),
            ))
        };
        let tls = futures_lite::future::or(handshake, timed_out)
            .await
            .map_err(TlsError::Handshake)?;
        let principal = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            None => Rc::from(ANONYMOUS),
            Some(cert) => {
                let dn = subject_dn(cert)?;
                let user = self.rules.user_of(&dn).ok_or(TlsError::NoPrincipal(dn))?;
                Rc::from(format!("User:{user}"))
            }
        };
        Ok((Box::new(tls), principal))
    }
}

/// Builds rustls's server configuration from the settings, reading the PEM files.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider(&settings.cipher_suites)?);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = settings
        .versions
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let (chain, key) = keystore(&settings.keystore)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)?;
    let builder = match (settings.client_auth, &settings.truststore) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(truststore)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in truststore_certs(truststore)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Truststore(e.to_string()))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Truststore(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(Arc::new(builder.with_single_cert(chain, key)?))
}

/// ring's provider with only the named suites (Kafka's IANA names; `TLS_AES_128_GCM_SHA256`
/// is rustls's `TLS13_AES_128_GCM_SHA256`), or all of its suites.
fn provider(names: &[String]) -> Result<CryptoProvider, TlsError> {
    // ring rather than aws-lc-rs: it builds with a C compiler alone. The price is no
    // post-quantum key exchange (X25519MLKEM768), which Kafka's JVM TLS does not offer either.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let name_of = |s: &rustls::SupportedCipherSuite| {
        let name = format!("{:?}", s.suite());
        name.replacen("TLS13_", "TLS_", 1)
    };
    if let Some(unknown) = names
        .iter()
        .find(|n| !provider.cipher_suites.iter().any(|s| name_of(s) == **n))
    {
        let known: Vec<String> = provider.cipher_suites.iter().map(name_of).collect();
        return Err(TlsError::CipherSuites(format!(
            "{unknown} is not available (available: {})",
            known.join(", ")
        )));
    }
    provider
        .cipher_suites
        .retain(|s| names.contains(&name_of(s)));
    Ok(provider)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The chain and key of a keystore: a file or inline PEM, key unencrypted.
fn keystore(
    keystore: &Keystore,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (key_pem, chain_pem, what) = match keystore {
        Keystore::File(path) => {
            let pem = read(path)?;
            (pem.clone(), pem, path.display().to_string())
        }
        Keystore::Inline { key, chain } => (
            key.as_bytes().to_vec(),
            chain.as_bytes().to_vec(),
            "ssl.keystore.key/ssl.keystore.certificate.chain".to_string(),
        ),
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        TlsError::Pem(format!(
            "{what}: no unencrypted private key ({e}); an encrypted one must be decrypted first"
        ))
    })?;
    let chain = certificates(&chain_pem, &what)?;
    Ok((chain, key))
}

fn truststore_certs(truststore: &Truststore) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    match truststore {
        Truststore::File(path) => certificates(&read(path)?, &path.display().to_string()),
        Truststore::Inline(pem) => certificates(pem.as_bytes(), "ssl.truststore.certificates"),
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(format!("{what}: no certificate")));
    }
    Ok(certs)
}

/// The certificate's subject as Java's `X500Principal.getName()` writes it (RFC 2253: the
/// last RDN first, `CN=alice,OU=eng,O=Example`), which Kafka's mapping rules match against.
pub fn subject_dn(cert: &CertificateDer<'_>) -> Result<String, TlsError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let rdns: Vec<String> = parsed
        .subject()
        .iter()
        .map(|rdn| {
            let parts: Vec<String> = rdn
                .iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let value = attr.as_str().map(escape_rfc2253).unwrap_or_else(|_| {
                        let hex: String = attr
                            .attr_value()
                            .data
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        format!("#{hex}")
                    });
                    format!("{}={value}", keyword(&oid).unwrap_or(&oid))
                })
                .collect();
            parts.join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// RFC 2253's attribute keywords (those Java writes by name).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape_rfc2253("a,b+c"), r"a\,b\+c");
        assert_eq!(escape_rfc2253(" #x "), r"\ #x\ ");
        assert_eq!(escape_rfc2253("plain"), "plain");
    }

    #[test]
    fn cipher_suites_are_named_as_kafka_names_them() {
        let p = provider(&["TLS_AES_128_GCM_SHA256".to_string()]).unwrap();
        assert_eq!(p.cipher_suites.len(), 1);
        let err = provider(&["TLS_RSA_WITH_NULL_MD5".to_string()]).unwrap_err();
        assert!(err.to_string().contains("TLS_AES_256_GCM_SHA384"), "{err}");
    }
}
