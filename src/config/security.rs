//! Listener security: the protocol of `listeners` (PLAINTEXT or SASL_PLAINTEXT) and, for SASL,
//! the enabled mechanisms and the PLAIN users, read from Kafka's JAAS line
//! (`listener.name.sasl_plaintext.plain.sasl.jaas.config=... user_alice="secret";`). Parsed on
//! the main thread at start-up; shards hold a read-only copy.

use std::collections::BTreeMap;

/// The broker key holding the PLAIN users, as Kafka names it for a SASL_PLAINTEXT listener.
pub const PLAIN_JAAS_KEY: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config";

/// The security protocol of the listeners (every shard port uses the same one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    SaslPlaintext,
}

impl SecurityProtocol {
    /// Kafka's name, as listeners and DescribeConfigs show it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
        }
    }

    /// The protocol of a listener such as `SASL_PLAINTEXT://host:9092` (no prefix: PLAINTEXT).
    pub fn of_listener(listener: &str) -> Result<Self, String> {
        match listener
            .split_once("://")
            .map(|(p, _)| p.to_ascii_uppercase())
        {
            None => Ok(SecurityProtocol::Plaintext),
            Some(p) if p == "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            Some(p) if p == "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            Some(p) => Err(format!(
                "listener protocol {p} is not supported (PLAINTEXT and SASL_PLAINTEXT are)"
            )),
        }
    }
}

/// SASL settings; only used when the listeners are SASL_PLAINTEXT.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// PLAIN users and their passwords.
    pub plain_users: BTreeMap<String, String>,
}

impl std::fmt::Debug for SaslConfig {
    /// Passwords never reach logs or `--print-config`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Mechanisms Sluice implements.
pub const SUPPORTED_MECHANISMS: &[&str] = &["PLAIN"];

/// Checks `sasl.enabled.mechanisms`: every entry must be one Sluice implements.
pub fn check_mechanisms(value: &str) -> Result<(), String> {
    let unsupported: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && !SUPPORTED_MECHANISMS.contains(m))
        .collect();
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mechanisms {unsupported:?} are not supported (only PLAIN is)"
        ))
    }
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
        assert!(!format!("{:?}", SaslConfig { plain_users: users }).contains("secret"));
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
        assert!(SecurityProtocol::of_listener("SSL://h:1").is_err());
        assert!(check_mechanisms("PLAIN").is_ok());
        assert!(check_mechanisms("PLAIN,SCRAM-SHA-256").is_err());
    }
}
