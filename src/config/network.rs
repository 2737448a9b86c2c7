//! Limits on what a client connection may make the broker hold, and for how long: Kafka's
//! `max.connections`, `max.connections.per.ip` (and its overrides), `connections.max.idle.ms`
//! and `sasl.server.max.receive.size`, plus Sluice's `sluice.request.read.timeout.ms`. The keys
//! are entries of the broker key table (`broker_keys.rs`), which uses the parsers here; they
//! are read once on the main thread with the rest of the broker configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{ConfigError, invalid, parse_key};

/// Kafka's default for the connection counts: `Int.MaxValue`, i.e. no limit of its own (the
/// per-shard hard cap still applies).
pub const UNLIMITED_CONNECTIONS: usize = i32::MAX as usize;

/// Connection limits and timeouts, shared read-only by every shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLimits {
    /// `max.connections`: open client connections on the whole node (every shard and the
    /// bootstrap port together), because descriptors and memory are the process's. Kafka
    /// counts per broker; a Sluice node is one process however many shard-brokers it shows.
    pub max_connections: usize,
    /// `max.connections.per.ip`: open connections from one address on the node.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: `ip:count` pairs that replace the per-IP limit.
    pub max_connections_per_ip_overrides: BTreeMap<IpAddr, usize>,
    /// `connections.max.idle.ms`: a connection with no bytes in or out for this long is
    /// closed; negative: never (Kafka's meaning).
    pub connections_max_idle_ms: i64,
    /// `sluice.request.read.timeout.ms`: once the first byte of a request frame has arrived,
    /// the whole frame must arrive within this long, or the connection is closed and the
    /// frame's memory returned. Counts time spent waiting for request memory too, so frames
    /// that each hold part of the budget cannot wait on one another forever.
    pub request_read_timeout_ms: u64,
    /// `sasl.server.max.receive.size`: largest frame accepted before a SASL listener's
    /// connection has authenticated (Kafka's default 524288).
    pub sasl_server_max_receive_size: usize,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        Self {
            max_connections: UNLIMITED_CONNECTIONS,
            max_connections_per_ip: UNLIMITED_CONNECTIONS,
            max_connections_per_ip_overrides: BTreeMap::new(),
            connections_max_idle_ms: 600_000,
            request_read_timeout_ms: 30_000,
            sasl_server_max_receive_size: 524_288,
        }
    }
}

impl NetworkLimits {
    /// Checks the keys against one another once all are read (Kafka's rule: a per-IP limit of
    /// 0 only makes sense with overrides that let some addresses in).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections_per_ip == 0 && self.max_connections_per_ip_overrides.is_empty() {
            return Err(invalid(
                "max.connections.per.ip",
                "0",
                "0 refuses every client unless max.connections.per.ip.overrides lets some in",
            ));
        }
        Ok(())
    }

    /// The connection limit for one peer address.
    pub fn limit_for(&self, ip: &IpAddr) -> usize {
        self.max_connections_per_ip_overrides
            .get(ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip)
    }

    /// Whether any per-IP limit is set (otherwise no per-IP counts are kept at all).
    pub fn limits_per_ip(&self) -> bool {
        self.max_connections_per_ip < UNLIMITED_CONNECTIONS
            || !self.max_connections_per_ip_overrides.is_empty()
    }

    /// `connections.max.idle.ms` as a duration; `None` when idle connections are kept.
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        u64::try_from(self.connections_max_idle_ms)
            .ok()
            .map(std::time::Duration::from_millis)
    }
}

/// A connection count or size of at least `min` (Kafka's keys are ints).
pub(super) fn count(key: &str, value: &str, min: usize) -> Result<usize, ConfigError> {
    let v: i64 = parse_key(key, value)?;
    if v < min as i64 || v > i64::from(i32::MAX) {
        return Err(invalid(
            key,
            value,
            &format!("must be between {min} and {}", i32::MAX),
        ));
    }
    Ok(v as usize)
}

/// Kafka's `host:count,host:count` list; hosts must be IP addresses here (Sluice does not
/// resolve names in its configuration). IPv6 addresses go in brackets: `[::1]:5`.
pub(super) fn parse_overrides(
    key: &str,
    value: &str,
) -> Result<BTreeMap<IpAddr, usize>, ConfigError> {
    let mut out = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, n) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, &format!("{entry:?} is not ip:count")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host.parse().map_err(|_| {
            invalid(
                key,
                value,
                &format!("{host:?} is not an IP address (names are not resolved)"),
            )
        })?;
        out.insert(ip, count(key, n, 0)?);
    }
    Ok(out)
}

/// The overrides as the key is written (IPv6 addresses without brackets, as before).
pub(super) fn show_overrides(overrides: &BTreeMap<IpAddr, usize>) -> String {
    overrides
        .iter()
        .map(|(ip, n)| format!("{ip}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_refuse_nonsense() {
        let mut limits = NetworkLimits::default();
        limits.apply("max.connections.per.ip", "3").unwrap();
        limits
            .apply("max.connections.per.ip.overrides", "127.0.0.2:1, [::1]:9")
            .unwrap();
        assert_eq!(limits.limit_for(&"127.0.0.1".parse().unwrap()), 3);
        assert_eq!(limits.limit_for(&"127.0.0.2".parse().unwrap()), 1);
        assert_eq!(limits.limit_for(&"::1".parse().unwrap()), 9);
        assert!(limits.limits_per_ip());
        assert!(!NetworkLimits::default().limits_per_ip());
        limits.apply("connections.max.idle.ms", "-1").unwrap();
        assert_eq!(limits.idle_timeout(), None);
        for (key, bad) in [
            ("max.connections", "0"),
            ("max.connections.per.ip", "-2"),
            ("max.connections.per.ip.overrides", "broker.example:3"),
            ("connections.max.idle.ms", "0"),
            ("sluice.request.read.timeout.ms", "0"),
            ("sasl.server.max.receive.size", "4294967296"),
        ] {
            let err = NetworkLimits::default().apply(key, bad).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        let mut zero = NetworkLimits::default();
        zero.apply("max.connections.per.ip", "0").unwrap();
        assert!(zero.validate().is_err());
    }
}
