//! Kafka listener lists: `listeners` and `advertised.listeners` (`NAME://host:port,...`) and
//! `listener.security.protocol.map` (`NAME:PROTOCOL,...`). Single-node mode reads the first
//! entry of `listeners` as it always did (its prefix is the security protocol); KRaft mode
//! (`cluster.rs`) reads every entry by name and looks the protocol up in the map. Parsed on the
//! main thread at start-up, as part of the broker configuration.

use super::{ConfigError, invalid, parse_key};

/// Kafka's default `listener.security.protocol.map`: every security protocol is also a
/// listener name mapped to itself.
pub const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// The security protocols Kafka defines; the map may only name these.
const KAFKA_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// One entry of a listener list: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka compares them (`PLAINTEXT`, `CONTROLLER`, ...);
    /// an entry written without `NAME://` is `PLAINTEXT`.
    pub name: String,
    /// Host or IP address as written; an IPv6 address without its brackets; empty means every
    /// address (Kafka's `PLAINTEXT://:9092`).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// Splits `host:port` (IPv6 in brackets: `[::1]:9093`) as written under `key`.
pub(super) fn host_port(key: &str, value: &str, entry: &str) -> Result<(String, u16), ConfigError> {
    let (host, port) = entry
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, value, &format!("{entry:?} is not host:port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = parse_key(key, port)?;
    if port == 0 {
        return Err(invalid(key, value, &format!("{entry:?} has port 0")));
    }
    Ok((host.to_string(), port))
}

/// Every entry of a listener list; names must be unique, as Kafka requires.
pub fn parse_list(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, addr) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
        let (host, port) = host_port(key, value, addr)?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(invalid(
                key,
                value,
                &format!("{entry:?} has no listener name"),
            ));
        }
        if out.iter().any(|l| l.name == name) {
            return Err(invalid(
                key,
                value,
                &format!("listener {name} is listed twice"),
            ));
        }
        out.push(Listener { name, host, port });
    }
    Ok(out)
}

/// The first entry of a listener list such as `PLAINTEXT://host:9092`: single-node mode's
/// reading of `listeners` and `advertised.listeners`, unchanged (later entries unchecked).
pub(super) fn parse_first(key: &str, value: &str) -> Result<(String, u16), ConfigError> {
    let first = value.split(',').next().unwrap_or("").trim();
    let addr = first.split_once("://").map(|(_, a)| a).unwrap_or(first);
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, value, "expected PLAINTEXT://host:port"))?;
    Ok((host.to_string(), parse_key(key, port)?))
}

/// `listener.security.protocol.map` as (listener name, security protocol) pairs, both
/// upper-cased, in the order written.
pub fn parse_protocol_map(key: &str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid(key, value, &format!("{entry:?} is not NAME:PROTOCOL")))?;
        let (name, protocol) = (
            name.trim().to_ascii_uppercase(),
            protocol.trim().to_ascii_uppercase(),
        );
        if !KAFKA_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(invalid(
                key,
                value,
                &format!(
                    "{protocol} is not a security protocol ({})",
                    KAFKA_PROTOCOLS.join(", ")
                ),
            ));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(invalid(
                key,
                value,
                &format!("listener {name} is mapped twice"),
            ));
        }
        out.push((name, protocol));
    }
    Ok(out)
}

/// The map as it is written in the file.
pub fn show_protocol_map(map: &[(String, String)]) -> String {
    let entries: Vec<String> = map.iter().map(|(n, p)| format!("{n}:{p}")).collect();
    entries.join(",")
}

/// The security protocol of listener `name`. When the operator left the map at its default,
/// controller listeners missing from it are PLAINTEXT, as Kafka's KRaft mode does (so the
/// usual `CONTROLLER://` entry needs no map line).
pub fn protocol_of<'a>(
    map: &'a [(String, String)],
    map_is_default: bool,
    controller_names: &[String],
    name: &str,
) -> Option<&'a str> {
    map.iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.as_str())
        .or_else(|| {
            (map_is_default && controller_names.iter().any(|c| c == name)).then_some("PLAINTEXT")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_by_name_and_refuse_nonsense() {
        let list = parse_list(
            "listeners",
            "PLAINTEXT://127.0.0.1:9092, controller://[::1]:9093",
        )
        .unwrap();
        assert_eq!(
            list,
            vec![
                Listener {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9092
                },
                Listener {
                    name: "CONTROLLER".into(),
                    host: "::1".into(),
                    port: 9093
                },
            ]
        );
        assert_eq!(list[1].to_string(), "CONTROLLER://[::1]:9093");
        assert_eq!(parse_list("listeners", "h:1").unwrap()[0].name, "PLAINTEXT");
        for bad in [
            "A://h:1,A://h:2",
            "A://h",
            "A://h:0",
            "A://h:70000",
            "://h:1",
        ] {
            let err = parse_list("listeners", bad).unwrap_err();
            assert!(err.to_string().contains("listeners"), "{bad}: {err}");
        }
    }

    #[test]
    fn protocol_map_has_kafkas_default_and_maps_controllers_implicitly() {
        let map = parse_protocol_map("m", DEFAULT_PROTOCOL_MAP).unwrap();
        assert_eq!(show_protocol_map(&map), DEFAULT_PROTOCOL_MAP);
        let controllers = ["CONTROLLER".to_string()];
        assert_eq!(
            protocol_of(&map, true, &controllers, "SASL_PLAINTEXT"),
            Some("SASL_PLAINTEXT")
        );
        assert_eq!(
            protocol_of(&map, true, &controllers, "CONTROLLER"),
            Some("PLAINTEXT")
        );
        assert_eq!(protocol_of(&map, false, &controllers, "CONTROLLER"), None);
        assert_eq!(protocol_of(&map, true, &controllers, "OTHER"), None);
        assert!(parse_protocol_map("m", "A:TLS").is_err());
        assert!(parse_protocol_map("m", "A:SSL,a:SSL").is_err());
        assert!(parse_protocol_map("m", "A").is_err());
    }
}
