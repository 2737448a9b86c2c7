//! Listener security: the protocol of a listener (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) and,
//! for SASL, the enabled mechanisms and the users, read from Kafka's JAAS lines
//! (`listener.name.sasl_plaintext.plain.sasl.jaas.config=... user_alice="secret";`). The keys
//! are entries of the broker key table (`broker_keys.rs`) or per-listener keys
//! (`client_listeners.rs`), which use the parsers here. Parsed on the main thread at start-up;
//! shards hold a read-only copy.

use std::collections::BTreeMap;

use crate::protocol::scram::{ITERATIONS, ScramCredential, ScramHash};

/// The broker key holding the PLAIN users, as Kafka names it for a SASL_PLAINTEXT listener.
pub const PLAIN_JAAS_KEY: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config";

/// The security protocol of a listener (its bootstrap port and every shard port beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// `PLAINTEXT://`: no authentication.
    #[default]
    Plaintext,
    /// `SSL://`: TLS; the principal comes from the client certificate, if one is asked for.
    Ssl,
    /// `SASL_PLAINTEXT://`: SASL PLAIN or SCRAM before any other request, no TLS.
    SaslPlaintext,
    /// `SASL_SSL://`: SASL inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name, as listeners and DescribeConfigs show it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Clients authenticate with SASL before any other request.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The connection is TLS from its first byte.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// The protocol Kafka names `name` (`SASL_SSL`, case-insensitive).
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            p => Err(format!(
                "{p} is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
            )),
        }
    }

    /// The protocol of a listener such as `SASL_PLAINTEXT://host:9092` (no prefix: PLAINTEXT).
    pub fn of_listener(listener: &str) -> Result<Self, String> {
        match listener.split_once("://") {
            None => Ok(SecurityProtocol::Plaintext),
            Some((p, _)) => Self::from_name(p),
        }
    }
}

/// SASL settings of one listener; only used when it is SASL_PLAINTEXT or SASL_SSL.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// Users and their passwords (PLAIN compares against these).
    pub plain_users: BTreeMap<String, String>,
    /// `sasl.enabled.mechanisms`, in the order the broker offers them.
    pub mechanisms: Vec<String>,
    /// SCRAM credentials of every user, derived at start-up: (SHA-256, SHA-512).
    pub scram: BTreeMap<String, (ScramCredential, ScramCredential)>,
}

impl Default for SaslConfig {
    fn default() -> Self {
        Self {
            plain_users: BTreeMap::new(),
            mechanisms: SUPPORTED_MECHANISMS.iter().map(|m| m.to_string()).collect(),
            scram: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for SaslConfig {
    /// Passwords and credentials never reach logs or `--print-config`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("users", &self.plain_users.keys().collect::<Vec<_>>())
            .field("mechanisms", &self.mechanisms)
            .finish()
    }
}

impl SaslConfig {
    /// Derives the SCRAM credentials of every user (random salt, 4096 iterations), once.
    pub fn derive_scram(&mut self) {
        self.scram = self
            .plain_users
            .iter()
            .map(|(user, password)| {
                let salt = || uuid::Uuid::new_v4().as_bytes().to_vec();
                let sha256 =
                    ScramCredential::derive(ScramHash::Sha256, password, salt(), ITERATIONS);
                let sha512 =
                    ScramCredential::derive(ScramHash::Sha512, password, salt(), ITERATIONS);
                (user.clone(), (sha256, sha512))
            })
            .collect();
    }

    /// The credential of `user` for `hash`.
    pub fn scram_credential(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
        self.scram.get(user).map(|(sha256, sha512)| match hash {
            ScramHash::Sha256 => sha256.clone(),
            ScramHash::Sha512 => sha512.clone(),
        })
    }

    /// Whether `mechanism` (e.g. `SCRAM-SHA-256`) is in `sasl.enabled.mechanisms`.
    pub fn is_enabled(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mechanism)
    }
}

/// Mechanisms Sluice implements.
pub const SUPPORTED_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Parses `sasl.enabled.mechanisms`: every entry must be one Sluice implements.
pub fn parse_mechanisms(value: &str) -> Result<Vec<String>, String> {
    let listed: Vec<String> = value
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect();
    let unsupported: Vec<&String> = listed
        .iter()
        .filter(|m| !SUPPORTED_MECHANISMS.contains(&m.as_str()))
        .collect();
    if !unsupported.is_empty() {
        return Err(format!(
            "mechanisms {unsupported:?} are not supported (supported: {SUPPORTED_MECHANISMS:?})"
        ));
    }
    if listed.is_empty() {
        return Err("no mechanism listed".into());
    }
    Ok(listed)
}

/// The `user_NAME="PASSWORD"` entries of a JAAS line. A ScramLoginModule line may have none:
/// its users are made with the SCRAM API (AlterUserScramCredentials), as in Kafka.
pub fn parse_jaas_users(jaas: &str) -> Result<BTreeMap<String, String>, String> {
    if jaas.contains("ScramLoginModule") && !jaas.contains("user_") {
        return Ok(BTreeMap::new());
    }
    parse_plain_users(jaas)
}

/// The `user_NAME="PASSWORD"` entries of a JAAS line for Kafka's PlainLoginModule.
pub fn parse_plain_users(jaas: &str) -> Result<BTreeMap<String, String>, String> {
    let mut users = BTreeMap::new();
    let mut rest = jaas;
    while let Some(at) = rest.find("user_") {
        let after = &rest[at + "user_".len()..];
        let (name, tail) = after
            .split_once('=')
            .ok_or_else(|| "a user_ entry lacks '='".to_string())?;
        let tail = tail.trim_start();
        let quoted = tail
            .strip_prefix('"')
            .ok_or_else(|| format!("the password of user {name} must be in double quotes"))?;
        let end = quoted
            .find('"')
            .ok_or_else(|| format!("the password of user {name} has no closing quote"))?;
        users.insert(name.trim().to_string(), quoted[..end].to_string());
        rest = &quoted[end + 1..];
    }
    if users.is_empty() {
        return Err("no user_NAME=\"PASSWORD\" entries".into());
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_jaas_lines_give_their_users() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required
            username="admin" password="admin-secret"
            user_admin="admin-secret" user_alice = "a=b;c";"#;
        let users = parse_plain_users(jaas).unwrap();
        assert_eq!(
            users,
            BTreeMap::from([
                ("admin".to_string(), "admin-secret".to_string()),
                ("alice".to_string(), "a=b;c".to_string()),
            ])
        );
        assert!(parse_plain_users("PlainLoginModule required;").is_err());
        assert!(parse_plain_users("user_bob=secret;").is_err());
        let mut sasl = SaslConfig {
            plain_users: users,
            ..SaslConfig::default()
        };
        sasl.derive_scram();
        assert!(sasl.scram_credential("alice", ScramHash::Sha512).is_some());
        assert!(!format!("{sasl:?}").contains("secret"));
    }

    #[test]
    fn listener_protocols_and_mechanisms() {
        assert_eq!(
            SecurityProtocol::of_listener("SASL_PLAINTEXT://h:1"),
            Ok(SecurityProtocol::SaslPlaintext)
        );
        assert_eq!(
            SecurityProtocol::of_listener("h:1"),
            Ok(SecurityProtocol::Plaintext)
        );
        assert_eq!(
            SecurityProtocol::of_listener("sasl_ssl://h:1"),
            Ok(SecurityProtocol::SaslSsl)
        );
        assert!(SecurityProtocol::of_listener("TLS://h:1").is_err());
        assert!(
            parse_jaas_users("org.apache.kafka.common.security.scram.ScramLoginModule required;")
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            parse_mechanisms("PLAIN, scram-sha-512").unwrap(),
            vec!["PLAIN".to_string(), "SCRAM-SHA-512".to_string()]
        );
        assert!(parse_mechanisms("PLAIN,GSSAPI").is_err());
        assert!(parse_mechanisms("").is_err());
    }
}
