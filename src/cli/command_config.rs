//! `--command-config FILE`: the client properties Kafka's tools read, of which Sluice's tools
//! use the security ones: `security.protocol` (PLAINTEXT or SASL_PLAINTEXT), `sasl.mechanism`
//! (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and `sasl.jaas.config` with `username="..."
//! password="..."` (the login module's class is not checked: the mechanism decides). Runs in the CLI
//! process, before any connection is opened.

use std::path::Path;

use crate::client::{Credentials, SaslMechanism};
use crate::config::parse_properties;
use crate::protocol::scram::ScramHash;

use super::CliError;

/// The SASL credentials the file asks for, or `None` for PLAINTEXT.
pub fn credentials(path: &Path) -> Result<Option<Credentials>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(
            format!("cannot read --command-config {}: {e}", path.display()),
            "pass a readable client properties file",
        )
    })?;
    let props = parse_properties(&text).map_err(|e| {
        CliError::usage(
            format!("--command-config {}: {e}", path.display()),
            "write one key=value per line",
        )
    })?;
    let protocol = props
        .get("security.protocol")
        .map(|p| p.trim().to_ascii_uppercase())
        .unwrap_or_else(|| "PLAINTEXT".into());
    match protocol.as_str() {
        "PLAINTEXT" => return Ok(None),
        "SASL_PLAINTEXT" => {}
        other => {
            return Err(CliError::usage(
                format!("security.protocol={other} is not supported by sluice's tools"),
                "use PLAINTEXT or SASL_PLAINTEXT",
            ));
        }
    }
    // Kafka's default mechanism is GSSAPI, which we do not speak: say so rather than guess.
    let name = props.get("sasl.mechanism").map_or("GSSAPI", |m| m.trim());
    let mechanism = match name {
        "PLAIN" => SaslMechanism::Plain,
        other => match ScramHash::of_mechanism(other) {
            Some(hash) => SaslMechanism::Scram(hash),
            None => {
                return Err(CliError::usage(
                    format!("sasl.mechanism={name} is not supported by sluice's tools"),
                    "set sasl.mechanism=PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                ));
            }
        },
    };
    let jaas = props.get("sasl.jaas.config").map_or("", String::as_str);
    match (
        quoted_value(jaas, "username"),
        quoted_value(jaas, "password"),
    ) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username,
            password,
            mechanism,
        })),
        _ => Err(CliError::usage(
            "sasl.jaas.config lacks username=\"...\" or password=\"...\"",
            "set sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";",
        )),
    }
}

/// The double-quoted value of `name="..."` in a JAAS line (a whole word, so `user_x=` and
/// `password=` inside other names do not match).
fn quoted_value(jaas: &str, name: &str) -> Option<String> {
    let mut rest = jaas;
    while let Some(at) = rest.find(name) {
        let before_ok = at == 0 || rest[..at].ends_with(char::is_whitespace);
        let after = rest[at + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start().strip_prefix('"')?;
            return value.find('"').map(|end| value[..end].to_string());
        }
        rest = &rest[at + name.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn sasl_plain_properties_give_credentials() {
        let file = write(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"a b\";\n",
        );
        assert_eq!(
            credentials(file.path()).unwrap(),
            Some(Credentials {
                username: "alice".into(),
                password: "a b".into(),
                mechanism: SaslMechanism::Plain,
            })
        );
        let scram = write(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"pw\";\n",
        );
        assert_eq!(
            credentials(scram.path()).unwrap().unwrap().mechanism,
            SaslMechanism::Scram(ScramHash::Sha512)
        );
        assert!(
            credentials(write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\n").path())
                .is_err()
        );
        assert_eq!(credentials(write("").path()).unwrap(), None);
        assert!(credentials(write("security.protocol=SSL\n").path()).is_err());
        assert!(
            credentials(write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n").path())
                .is_err()
        );
        assert_eq!(
            quoted_value(r#"user_password="x" password="y""#, "password"),
            Some("y".into())
        );
    }
}
