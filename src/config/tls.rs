//! TLS settings of one listener, from Kafka's `ssl.*` keys: each key may be set for all
//! listeners (`ssl.keystore.location`) or for one (`listener.name.ssl.ssl.keystore.location`,
//! which wins). Only PEM stores are read (`ssl.keystore.type=PEM`): a keystore file holds an
//! unencrypted PKCS#8 key and the certificate chain, or the key and chain are given inline.
//! Parsed on the main thread at start-up; the server (`server::tls`) builds rustls from it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::acl::principal_rules::PrincipalRules;

use super::{ConfigError, invalid};

/// The generic `ssl.*` keys Sluice reads, alone or behind `listener.name.<listener>.`.
pub const TLS_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "ssl.endpoint.identification.algorithm",
];

/// Where the server's key and certificate chain come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    /// `ssl.keystore.location`: one PEM file with the key and the chain; re-read when it
    /// changes.
    File(PathBuf),
    /// `ssl.keystore.key` and `ssl.keystore.certificate.chain`: PEM text in the configuration.
    Inline {
        /// The private key, PEM.
        key: String,
        /// The certificate chain, PEM, leaf first.
        chain: String,
    },
}

/// Where the certificates trusted to sign client certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truststore {
    /// `ssl.truststore.location`: a PEM file of CA certificates; re-read when it changes.
    File(PathBuf),
    /// `ssl.truststore.certificates`: PEM text.
    Inline(String),
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for (Kafka's default).
    #[default]
    None,
    /// Asked for; a client without one still connects (as `User:ANONYMOUS` unless SASL).
    Requested,
    /// A client certificate signed by the truststore is required.
    Required,
}

/// `ssl.enabled.protocols` entries Sluice can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

/// One listener's TLS configuration.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The server's key and chain.
    pub keystore: Keystore,
    /// CAs for client certificates; needed when `client_auth` is not `None`.
    pub truststore: Option<Truststore>,
    /// Whether a client certificate is asked for.
    pub client_auth: ClientAuth,
    /// Protocol versions offered (default TLSv1.2 and TLSv1.3, Kafka's).
    pub versions: Vec<TlsVersion>,
    /// `ssl.cipher.suites` as IANA names; empty: rustls's safe defaults.
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules`: the client certificate's DN to a user name.
    pub principal_rules: PrincipalRules,
}

/// The value of `key` for listener `listener`: its `listener.name.` form first, then the
/// generic one.
pub fn lookup<'a>(
    explicit: &'a BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<(String, &'a str)> {
    let specific = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    if let Some(v) = explicit.get(&specific) {
        return Some((specific, v.as_str()));
    }
    explicit.get(key).map(|v| (key.to_string(), v.as_str()))
}

/// Whether `key` is a TLS key Sluice reads, generic or for one listener.
pub fn is_tls_key(key: &str) -> bool {
    let generic = key
        .strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(key, |(_, k)| k);
    TLS_KEYS.contains(&generic)
}

impl TlsSettings {
    /// The TLS settings of listener `listener` from the keys the operator set.
    pub fn resolve(
        explicit: &BTreeMap<String, String>,
        listener: &str,
    ) -> Result<Self, ConfigError> {
        let get = |key: &str| -> Option<(String, String)> {
            lookup(explicit, listener, key).map(|(k, v)| (k, v.to_string()))
        };
        for store in ["ssl.keystore.type", "ssl.truststore.type"] {
            if let Some((k, v)) = get(store)
                && !v.trim().eq_ignore_ascii_case("PEM")
            {
                return Err(invalid(
                    &k,
                    &v,
                    "only PEM stores are read (JKS and PKCS12 are not): convert with openssl",
                ));
            }
        }
        if let Some((k, v)) = get("ssl.key.password").filter(|(_, v)| !v.is_empty()) {
            return Err(invalid(
                &k,
                &v,
                "encrypted private keys are not read: give an unencrypted PKCS#8 key",
            ));
        }
        let keystore = keystore(&get, listener)?;
        let truststore = match (
            get("ssl.truststore.location"),
            get("ssl.truststore.certificates"),
        ) {
            (Some((_, path)), None) => Some(Truststore::File(PathBuf::from(path.trim()))),
            (None, Some((_, pem))) => Some(Truststore::Inline(pem)),
            (None, None) => None,
            (Some((k, v)), Some(_)) => {
                return Err(invalid(
                    &k,
                    &v,
                    "set either ssl.truststore.location or ssl.truststore.certificates",
                ));
            }
        };
        let client_auth = match get("ssl.client.auth") {
            None => ClientAuth::None,
            Some((k, v)) => parse_client_auth(&k, &v)?,
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(invalid(
                &format!(
                    "listener.name.{}.ssl.client.auth",
                    listener.to_ascii_lowercase()
                ),
                "requested/required",
                "client certificates need a truststore (ssl.truststore.location)",
            ));
        }
        let versions = match get("ssl.enabled.protocols") {
            None => vec![TlsVersion::Tls12, TlsVersion::Tls13],
            Some((k, v)) => parse_versions(&k, &v)?,
        };
        let cipher_suites = get("ssl.cipher.suites")
            .map(|(_, v)| split_list(&v))
            .unwrap_or_default();
        let principal_rules = match get("ssl.principal.mapping.rules") {
            None => PrincipalRules::default(),
            Some((k, v)) => PrincipalRules::parse(&v).map_err(|e| invalid(&k, &v, &e))?,
        };
        Ok(TlsSettings {
            keystore,
            truststore,
            client_auth,
            versions,
            cipher_suites,
            principal_rules,
        })
    }

    /// The files to watch for a reload.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Keystore::File(path) = &self.keystore {
            files.push(path.clone());
        }
        if let Some(Truststore::File(path)) = &self.truststore {
            files.push(path.clone());
        }
        files
    }
}

fn keystore(
    get: &dyn Fn(&str) -> Option<(String, String)>,
    listener: &str,
) -> Result<Keystore, ConfigError> {
    match (
        get("ssl.keystore.location"),
        get("ssl.keystore.key"),
        get("ssl.keystore.certificate.chain"),
    ) {
        (Some((_, path)), None, None) => Ok(Keystore::File(PathBuf::from(path.trim()))),
        (None, Some((_, key)), Some((_, chain))) => Ok(Keystore::Inline { key, chain }),
        _ => Err(invalid(
            &format!(
                "listener.name.{}.ssl.keystore.location",
                listener.to_ascii_lowercase()
            ),
            "",
            &format!(
                "the TLS listener {listener} needs ssl.keystore.location, or both \
                 ssl.keystore.key and ssl.keystore.certificate.chain"
            ),
        )),
    }
}

fn parse_client_auth(key: &str, value: &str) -> Result<ClientAuth, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "none" | "" => Ok(ClientAuth::None),
        "requested" => Ok(ClientAuth::Requested),
        "required" => Ok(ClientAuth::Required),
        _ => Err(invalid(key, value, "must be none, requested or required")),
    }
}

fn parse_versions(key: &str, value: &str) -> Result<Vec<TlsVersion>, ConfigError> {
    let mut versions = Vec::new();
    for name in split_list(value) {
        let version = match name.as_str() {
            "TLSv1.2" => TlsVersion::Tls12,
            "TLSv1.3" => TlsVersion::Tls13,
            other => {
                return Err(invalid(
                    key,
                    value,
                    &format!("{other} is not offered (TLSv1.2 and TLSv1.3 are)"),
                ));
            }
        };
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        return Err(invalid(key, value, "no protocol listed"));
    }
    Ok(versions)
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn per_listener_keys_win_over_generic_ones() {
        let explicit = keys(&[
            ("ssl.keystore.location", "/generic.pem"),
            ("listener.name.sasl_ssl.ssl.keystore.location", "/sasl.pem"),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.location", "/ca.pem"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ]);
        let ssl = TlsSettings::resolve(&explicit, "SSL").unwrap();
        assert_eq!(ssl.keystore, Keystore::File("/generic.pem".into()));
        assert_eq!(ssl.client_auth, ClientAuth::Required);
        assert_eq!(ssl.versions, vec![TlsVersion::Tls13]);
        let sasl = TlsSettings::resolve(&explicit, "SASL_SSL").unwrap();
        assert_eq!(sasl.keystore, Keystore::File("/sasl.pem".into()));
        assert_eq!(
            sasl.files(),
            vec![PathBuf::from("/sasl.pem"), PathBuf::from("/ca.pem")]
        );
        assert!(is_tls_key("listener.name.sasl_ssl.ssl.keystore.location"));
        assert!(is_tls_key("ssl.cipher.suites"));
        assert!(!is_tls_key("listener.name.x.sasl.jaas.config"));
    }

    #[test]
    fn nonsense_is_refused_with_the_key() {
        for bad in [
            keys(&[]),
            keys(&[
                ("ssl.keystore.location", "/k"),
                ("ssl.keystore.type", "JKS"),
            ]),
            keys(&[("ssl.keystore.location", "/k"), ("ssl.key.password", "x")]),
            keys(&[
                ("ssl.keystore.location", "/k"),
                ("ssl.client.auth", "maybe"),
            ]),
            keys(&[
                ("ssl.keystore.location", "/k"),
                ("ssl.client.auth", "required"),
            ]),
            keys(&[
                ("ssl.keystore.location", "/k"),
                ("ssl.enabled.protocols", "TLSv1.1"),
            ]),
            keys(&[("ssl.keystore.key", "k")]),
        ] {
            let err = TlsSettings::resolve(&bad, "SSL").unwrap_err().to_string();
            assert!(err.contains("ssl."), "{bad:?}: {err}");
        }
    }
}
