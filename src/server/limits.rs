//! Node-wide connection counts for `max.connections` and `max.connections.per.ip`. The one
//! piece of connection state shared between shards: it is touched only when a connection is
//! accepted and when it closes, never per request. The total is one atomic; per-address counts
//! sit behind a mutex held for a map update, and are not kept at all unless a per-IP limit is
//! configured (Kafka's default has none).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::NetworkLimits;

/// Why a new connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The shard already serves `MAX_CONNECTIONS_PER_SHARD` connections; carries that cap.
    #[error("the shard's cap of {0} connections reached")]
    Shard(usize),
    /// The peer's address could not be read: it disconnected before admission.
    #[error("the peer went away before it was admitted")]
    Gone,
    /// `max.connections` connections are open on the node; carries the limit.
    #[error("max.connections ({0}) reached on this node")]
    Node(usize),
    /// `max.connections.per.ip`, or its override for the address, is reached.
    #[error("max.connections.per.ip ({limit}) reached for {ip}")]
    PerIp {
        /// The peer's address.
        ip: IpAddr,
        /// The limit in force for that address.
        limit: usize,
    },
}

/// Open connections of the whole node, shared by every shard behind an `Arc` and touched only at
/// accept and close: the total against `max.connections` and, when a per-IP limit is set, each
/// address's count.
pub struct NodeConnections {
    limits: NetworkLimits,
    total: AtomicUsize,
    per_ip: Option<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection; gives its place back when dropped (the connection closed).
pub struct Admission {
    node: Arc<NodeConnections>,
    ip: IpAddr,
}

impl NodeConnections {
    /// No connections yet; per-address counts are kept only when `limits` sets
    /// `max.connections.per.ip` or its overrides.
    pub fn new(limits: &NetworkLimits) -> Self {
        Self {
            per_ip: limits.limits_per_ip().then(|| Mutex::new(HashMap::new())),
            limits: limits.clone(),
            total: AtomicUsize::new(0),
        }
    }

    /// Counts a new connection from `ip`, or says which limit refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let max = self.limits.max_connections;
        let admitted = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(Refusal::Node(max));
        }
        if let Some(per_ip) = &self.per_ip {
            let limit = self.limits.limit_for(&ip);
            let mut counts = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(ip).or_insert(0);
            if *count >= limit {
                if *count == 0 {
                    counts.remove(&ip);
                }
                drop(counts);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerIp { ip, limit });
            }
            *count += 1;
        }
        Ok(Admission {
            node: self.clone(),
            ip,
        })
    }

    /// Open connections on the node.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(per_ip) = &self.node.per_ip {
            let mut counts = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = counts.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&self.ip);
                }
            }
        }
        self.node.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_and_closing_gives_the_place_back() {
        let mut limits = NetworkLimits::default();
        limits.apply("max.connections", "3").unwrap();
        limits.apply("max.connections.per.ip", "2").unwrap();
        limits
            .apply("max.connections.per.ip.overrides", "10.0.0.9:0")
            .unwrap();
        let node = Arc::new(NodeConnections::new(&limits));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = node.admit(a).unwrap();
        let _second = node.admit(a).unwrap();
        assert_eq!(
            node.admit(a).err(),
            Some(Refusal::PerIp { ip: a, limit: 2 })
        );
        assert_eq!(
            node.admit("10.0.0.9".parse().unwrap()).err(),
            Some(Refusal::PerIp {
                ip: "10.0.0.9".parse().unwrap(),
                limit: 0
            })
        );
        let _third = node.admit(b).unwrap();
        assert_eq!(node.admit(b).err(), Some(Refusal::Node(3)));
        assert_eq!(node.open(), 3);
        drop(first);
        assert_eq!(node.open(), 2);
        let _again = node.admit(a).unwrap();
    }
}
