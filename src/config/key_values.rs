//! Value parsers shared by the entries of the broker key table (`broker_keys.rs`): ranges
//! with Sluice's usual messages, the metrics address, the JAAS user lines. Run on the main
//! thread while the broker configuration is read.

use super::security::parse_jaas_users;
use super::{BrokerConfig, ConfigError, invalid, parse_key};

/// A value of at least `min`, with Sluice's usual message.
pub(super) fn at_least<T>(key: &str, value: &str, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let v: T = parse_key(key, value)?;
    if v < min {
        return Err(invalid(key, value, &format!("must be at least {min}")));
    }
    Ok(v)
}

/// A value above zero (the coordinators' keys, whose message Kafka words this way).
pub(super) fn positive<T>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let v: T = parse_key(key, value)?;
    if v > T::default() {
        Ok(v)
    } else {
        Err(invalid(key, value, "must be positive"))
    }
}

/// The listeners as `--print-config` shows them, with their bind hosts or, for
/// `advertised.listeners`, the hosts given to clients.
pub(super) fn show_listener(cfg: &BrokerConfig, advertised: bool) -> String {
    let host = if advertised {
        &cfg.advertised_host
    } else {
        &cfg.host
    };
    let first = format!(
        "{}://{host}:{}",
        cfg.security_protocol.name(),
        cfg.bootstrap_port
    );
    let rest = cfg.listeners.iter().skip(1).map(|l| {
        let host = if advertised {
            &l.advertised_host
        } else {
            &l.host
        };
        format!("{}://{host}:{}", l.name, l.bootstrap_port)
    });
    std::iter::once(first)
        .chain(rest)
        .collect::<Vec<_>>()
        .join(",")
}

/// `off` (or `none`, or empty) disables the metrics endpoint.
pub(super) fn metrics_addr(value: &str) -> Option<String> {
    let v = value.trim();
    (!(v.is_empty() || v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none")))
        .then(|| v.to_string())
}

/// Checks one of the JAAS lines whose `user_NAME="PASSWORD"` entries define users: the PLAIN
/// one and, by the same naming, one per SCRAM mechanism. The users are read per listener once
/// every key is known (`client_listeners.rs`): those of every line of a listener add up, and
/// all may use every enabled mechanism.
pub(super) fn parse_users(
    _cfg: &mut BrokerConfig,
    key: &str,
    value: &str,
) -> Result<(), ConfigError> {
    parse_jaas_users(value).map_err(|e| invalid(key, value, &e))?;
    Ok(())
}

/// Stores a parsed value, or passes its error on: what most entries' `parse` does.
pub(super) fn set<T>(field: &mut T, parsed: Result<T, ConfigError>) -> Result<(), ConfigError> {
    *field = parsed?;
    Ok(())
}
