//! Every client listener of the node: the first (the one `host`, `bootstrap_port` and
//! `shard_ports` describe, as before) and any further entries of `listeners`, e.g.
//! `PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9192,SASL_SSL://127.0.0.1:9292`. Each listener
//! has its bootstrap port and, for shard `c`, port `P + 1 + c`; its own security protocol from
//! `listener.security.protocol.map`; its SASL users from
//! `listener.name.<listener>.<mechanism>.sasl.jaas.config`; and, for SSL and SASL_SSL, its TLS
//! settings (`tls.rs`). Resolved on the main thread once every key and flag is read.

use std::collections::BTreeMap;

use super::listeners::{self, Listener};
use super::security::{SaslConfig, SecurityProtocol, parse_jaas_users};
use super::tls::TlsSettings;
use super::{BrokerConfig, ConfigError, advertise_for, invalid};

/// Mechanisms whose JAAS lines Kafka reads per listener.
const JAAS_MECHANISMS: &[&str] = &["plain", "scram-sha-256", "scram-sha-512"];

/// One listener clients connect to.
#[derive(Debug, Clone)]
pub struct ClientListener {
    /// The listener name, upper-cased (`PLAINTEXT`, `SSL`, `EXTERNAL`, ...).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The host it binds.
    pub host: String,
    /// The host Metadata gives clients that connected to it.
    pub advertised_host: String,
    /// Its bootstrap port (served by shard 0).
    pub bootstrap_port: u16,
    /// Port of shard `c` is `shard_ports[c]`.
    pub shard_ports: Vec<u16>,
    /// Its SASL users and mechanisms (SASL protocols only).
    pub sasl: SaslConfig,
    /// Its TLS settings (SSL and SASL_SSL only).
    pub tls: Option<TlsSettings>,
}

/// The JAAS key of `mechanism` (lower case) on listener `name`.
pub fn jaas_key(name: &str, mechanism: &str) -> String {
    format!(
        "listener.name.{}.{mechanism}.sasl.jaas.config",
        name.to_ascii_lowercase()
    )
}

/// Whether `key` is a per-listener JAAS line (`listener.name.<l>.<mechanism>.sasl.jaas.config`).
pub fn is_jaas_key(key: &str) -> bool {
    key.strip_prefix("listener.name.")
        .and_then(|rest| rest.strip_suffix(".sasl.jaas.config"))
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(_, mechanism)| JAAS_MECHANISMS.contains(&mechanism))
}

/// Every client listener of `cfg`, the first from the fields it already has.
pub(super) fn resolve(cfg: &BrokerConfig) -> Result<Vec<ClientListener>, ConfigError> {
    let first_name = first_listener_name(cfg);
    let mut out = vec![complete(
        cfg,
        ClientListener {
            name: first_name,
            protocol: cfg.security_protocol,
            host: cfg.host.clone(),
            advertised_host: cfg.advertised_host.clone(),
            bootstrap_port: cfg.bootstrap_port,
            shard_ports: cfg.shard_ports.clone(),
            sasl: cfg.sasl.clone(),
            tls: None,
        },
    )?];
    let all = listeners::parse_list("listeners", &cfg.kraft.listeners)?;
    let controllers = &cfg.kraft.controller_listener_names;
    for entry in all
        .iter()
        .filter(|l| !controllers.contains(&l.name))
        .skip(1)
    {
        let listener = further_listener(cfg, entry)?;
        out.push(complete(cfg, listener)?);
    }
    if out.len() > 1 && cfg.cluster.is_none() {
        // Single-node mode reads the first advertised entry whatever its name; with several
        // listeners each takes the entry of its own name.
        out[0].advertised_host = advertised_host(cfg, &out[0].name, &out[0].host)?;
    }
    check_ports_distinct(&out)?;
    Ok(out)
}

/// The host `advertised.listeners` gives listener `name`, or its bind host (loopback for a
/// wildcard).
fn advertised_host(cfg: &BrokerConfig, name: &str, host: &str) -> Result<String, ConfigError> {
    let key = "advertised.listeners";
    Ok(listeners::parse_list(key, &cfg.kraft.advertised_listeners)?
        .into_iter()
        .find(|a| a.name == name)
        .map_or_else(|| advertise_for(host), |a| a.host))
}

/// The first listener's name: the entry's own in KRaft mode, the protocol's in single-node
/// mode (where the entry's prefix is the protocol).
fn first_listener_name(cfg: &BrokerConfig) -> String {
    match &cfg.cluster {
        Some(cluster) => cluster
            .broker_listeners
            .first()
            .map_or_else(|| "PLAINTEXT".to_string(), |l| l.name.clone()),
        None => cfg.security_protocol.name().to_string(),
    }
}

/// A listener after the first: its protocol from the map, its advertised host from
/// `advertised.listeners` (or its own host), its shard ports beside its bootstrap port.
fn further_listener(cfg: &BrokerConfig, entry: &Listener) -> Result<ClientListener, ConfigError> {
    let map_key = "listener.security.protocol.map";
    let map = &cfg.kraft.protocol_map;
    let is_default = !cfg.explicit.contains_key(map_key);
    let protocol = listeners::protocol_of(map, is_default, &[], &entry.name)
        .ok_or_else(|| {
            invalid(
                map_key,
                &listeners::show_protocol_map(map),
                &format!("has no security protocol for listener {}", entry.name),
            )
        })
        .and_then(|p| SecurityProtocol::from_name(p).map_err(|e| invalid(map_key, p, &e)))?;
    let advertised = advertised_host(cfg, &entry.name, &entry.host)?;
    let shard_ports = (0..cfg.cores)
        .map(|core| {
            u16::try_from(usize::from(entry.port) + 1 + core).map_err(|_| {
                invalid(
                    "listeners",
                    &entry.to_string(),
                    "shard ports would exceed 65535",
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ClientListener {
        name: entry.name.clone(),
        protocol,
        host: entry.host.clone(),
        advertised_host: advertised,
        bootstrap_port: entry.port,
        shard_ports,
        sasl: SaslConfig {
            mechanisms: cfg.sasl.mechanisms.clone(),
            ..SaslConfig::default()
        },
        tls: None,
    })
}

/// Fills in a listener's SASL users and TLS settings from its keys.
fn complete(
    cfg: &BrokerConfig,
    mut listener: ClientListener,
) -> Result<ClientListener, ConfigError> {
    if listener.protocol.uses_sasl() {
        listener.sasl.plain_users = jaas_users(&cfg.explicit, &listener.name)?;
        listener.sasl.derive_scram();
    }
    if listener.protocol.uses_tls() {
        listener.tls = Some(TlsSettings::resolve(&cfg.explicit, &listener.name)?);
    }
    Ok(listener)
}

/// The users of every JAAS line of listener `name`; at least one line must be set.
fn jaas_users(
    explicit: &BTreeMap<String, String>,
    name: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut users = BTreeMap::new();
    let mut lines = 0;
    for mechanism in JAAS_MECHANISMS {
        let key = jaas_key(name, mechanism);
        if let Some(line) = explicit.get(&key) {
            lines += 1;
            let found = parse_jaas_users(line).map_err(|e| invalid(&key, line, &e).hidden())?;
            users.extend(found);
        }
    }
    if lines == 0 {
        let key = jaas_key(name, "plain");
        return Err(invalid(
            "listeners",
            name,
            &format!(
                "SASL needs users: set {key} with user_NAME=\"PASSWORD\" entries (or a \
                 SCRAM line, {}, for users made with the SCRAM API)",
                jaas_key(name, "scram-sha-512")
            ),
        ));
    }
    Ok(users)
}

fn check_ports_distinct(listeners: &[ClientListener]) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<u16, &str> = BTreeMap::new();
    for l in listeners {
        for port in std::iter::once(l.bootstrap_port).chain(l.shard_ports.iter().copied()) {
            if let Some(other) = seen.insert(port, &l.name) {
                return Err(invalid(
                    "listeners",
                    &l.name,
                    &format!(
                        "port {port} is used by listeners {other} and {} (each listener \
                         takes its port and the next one per core)",
                        l.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_keys_are_recognised_per_listener() {
        assert!(is_jaas_key(
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"
        ));
        assert!(is_jaas_key("listener.name.external.plain.sasl.jaas.config"));
        assert!(!is_jaas_key(
            "listener.name.external.gssapi.sasl.jaas.config"
        ));
        assert_eq!(
            jaas_key("SASL_PLAINTEXT", "plain"),
            super::super::PLAIN_JAAS_KEY
        );
    }
}
