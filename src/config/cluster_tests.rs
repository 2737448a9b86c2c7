//! Tests of the KRaft configuration: the issue 13 node file, each validation error, and the
//! single-node mode left as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::{Overrides, ValueSource};

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(p: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::from_properties(p, &Overrides::default(), 1)
}

/// The node file of issue 13 for node `n`, with P = 19092 and C = 19999 (not 19999: shard 0
/// listens on P + 1).
fn issue_node(n: u8) -> BTreeMap<String, String> {
    let listeners = format!("PLAINTEXT://127.0.0.{n}:19092,CONTROLLER://127.0.0.{n}:19999");
    let advertised = format!("PLAINTEXT://127.0.0.{n}:19092");
    props(&[
        ("node.id", &n.to_string()),
        ("process.roles", "broker,controller"),
        (
            "controller.quorum.voters",
            "1@127.0.0.1:19999,2@127.0.0.2:19999,3@127.0.0.3:19999",
        ),
        ("listeners", &listeners),
        ("advertised.listeners", &advertised),
        ("controller.listener.names", "CONTROLLER"),
        ("log.dirs", &format!("/var/sluice/{n}")),
        ("default.replication.factor", "3"),
        ("min.insync.replicas", "2"),
        ("offsets.topic.replication.factor", "3"),
        ("transaction.state.log.replication.factor", "3"),
        ("transaction.state.log.min.isr", "2"),
    ])
}

fn listener(name: &str, host: &str, port: u16) -> Listener {
    Listener {
        name: name.into(),
        host: host.into(),
        port,
    }
}

fn voter(id: i32, host: &str) -> Voter {
    Voter {
        id,
        host: host.into(),
        port: 19999,
    }
}

#[test]
fn the_issue_node_file_parses_for_each_node() {
    for n in 1..=3u8 {
        let cfg = load(&issue_node(n)).unwrap();
        let host = format!("127.0.0.{n}");
        let expected = ClusterConfig {
            node_id: i32::from(n),
            roles: ProcessRoles::Combined,
            voters: vec![
                voter(1, "127.0.0.1"),
                voter(2, "127.0.0.2"),
                voter(3, "127.0.0.3"),
            ],
            bootstrap_servers: vec![],
            controller_listener_name: "CONTROLLER".into(),
            controller_listener: Some(listener("CONTROLLER", &host, 19999)),
            broker_listeners: vec![listener("PLAINTEXT", &host, 19092)],
            advertised_listener: Some(listener("PLAINTEXT", &host, 19092)),
            election_timeout: Duration::from_millis(1000),
            fetch_timeout: Duration::from_millis(2000),
            request_timeout: Duration::from_millis(2000),
            heartbeat_interval: Duration::from_millis(2000),
            session_timeout: Duration::from_millis(9000),
            registration_timeout: Duration::from_millis(60_000),
            metadata_log_dir: PathBuf::from(format!("/var/sluice/{n}")),
            snapshot_bytes: 20_971_520,
            metadata_retention_bytes: 104_857_600,
            offsets_replication_factor: 3,
            transaction_replication_factor: 3,
            transaction_min_isr: 2,
            share_state_replication_factor: 3,
            share_state_min_isr: 2,
            replication: ReplicationConfig {
                lag_time_max: Duration::from_millis(30_000),
                fetch_max_bytes: 1_048_576,
                fetch_response_max_bytes: 10_485_760,
                fetch_wait_max: Duration::from_millis(500),
                fetch_backoff: Duration::from_millis(1000),
                leader_rebalance: Some(LeaderRebalance {
                    check_interval: Duration::from_secs(300),
                    imbalance_percent: 10,
                }),
                selector: ReplicaSelector::Leader,
            },
            rack: None,
        };
        assert_eq!(cfg.cluster, Some(expected), "node {n}");
        // The client side is the PLAINTEXT entry: shard c on P + 1 + c of the node's address.
        assert_eq!(
            (cfg.host.as_str(), cfg.bootstrap_port),
            (host.as_str(), 19092)
        );
        assert_eq!(cfg.advertised_host, host);
        assert_eq!(cfg.shard_ports, vec![19093]);
        assert_eq!(cfg.security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(cfg.default_replication_factor, 3);
        // min.insync.replicas has one definition: the topic default of that name.
        let topic = cfg.topic_defaults.describe(&BTreeMap::new());
        let min_isr = ("min.insync.replicas", "2".to_string(), ValueSource::Broker);
        assert!(topic.contains(&min_isr), "{topic:?}");
    }
}

/// The issue's node 1 with `changes` applied; a value of `None` removes the key.
fn node1_with(changes: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
    let mut p = issue_node(1);
    for (key, value) in changes {
        match value {
            Some(v) => p.insert(key.to_string(), v.to_string()),
            None => p.remove(*key),
        };
    }
    p
}

/// Loading fails with an error naming `key` and containing `words`.
#[test]
fn replica_selector_class_takes_kafkas_two_selectors_only() {
    let selector = |value: Option<&str>| {
        load(&node1_with(&[("replica.selector.class", value)]))
            .unwrap()
            .cluster
            .unwrap()
            .replication
            .selector
    };
    assert_eq!(selector(None), ReplicaSelector::Leader);
    assert_eq!(
        selector(Some("org.apache.kafka.common.replica.LeaderSelector")),
        ReplicaSelector::Leader
    );
    assert_eq!(
        selector(Some(
            "org.apache.kafka.common.replica.RackAwareReplicaSelector"
        )),
        ReplicaSelector::RackAware
    );
    refused(
        &node1_with(&[("replica.selector.class", Some("com.example.MySelector"))]),
        "replica.selector.class",
        "RackAwareReplicaSelector",
    );
}

fn refused(p: &BTreeMap<String, String>, key: &str, words: &str) {
    let err = load(p).unwrap_err().to_string();
    assert!(
        err.contains(&format!(" for {key}: ")),
        "expected {key}: {err}"
    );
    assert!(err.contains(words), "expected {words:?}: {err}");
}

#[test]
fn kraft_needs_an_explicit_node_id() {
    refused(
        &node1_with(&[("node.id", None)]),
        "node.id",
        "process.roles",
    );
    refused(
        &node1_with(&[("node.id", Some("-1"))]),
        "node.id",
        "between 0",
    );
    // broker.id, the alias, and the flag count as set.
    let alias = node1_with(&[("node.id", None), ("broker.id", Some("1"))]);
    assert_eq!(load(&alias).unwrap().cluster.unwrap().node_id, 1);
    let flags = Overrides {
        node_id: Some(1),
        ..Overrides::default()
    };
    let p = node1_with(&[("node.id", None)]);
    let cfg = BrokerConfig::from_properties(&p, &flags, 1).unwrap();
    assert_eq!(cfg.cluster.unwrap().node_id, 1);
}

#[test]
fn a_controller_needs_its_controller_listener() {
    let plain_only = Some("PLAINTEXT://127.0.0.1:19092");
    refused(
        &node1_with(&[("listeners", plain_only)]),
        "listeners",
        "CONTROLLER://host:port",
    );
    let names = Some("CONTROLLER,CTRL2");
    refused(
        &node1_with(&[("controller.listener.names", names)]),
        "controller.listener.names",
        "CTRL2",
    );
    refused(
        &node1_with(&[("controller.listener.names", None)]),
        "controller.listener.names",
        "must be set",
    );
    // Renamed: CTRL names the controller listener, so the CONTROLLER entry is just another
    // client listener and the controller has none.
    let renamed = node1_with(&[("controller.listener.names", Some("CTRL"))]);
    refused(&renamed, "listeners", "CTRL://host:port");
}

#[test]
fn a_controller_must_be_a_voter() {
    let others = Some("2@127.0.0.2:19999,3@127.0.0.3:19999");
    refused(
        &node1_with(&[("controller.quorum.voters", others)]),
        "controller.quorum.voters",
        "node.id 1 is not a voter",
    );
}

#[test]
fn malformed_voters_are_refused() {
    for bad in [
        "1@127.0.0.1",
        "127.0.0.1:19999",
        "x@127.0.0.1:19999",
        "-1@127.0.0.1:19999",
        "1@127.0.0.1:0",
        "1@127.0.0.1:65536",
        "1@127.0.0.1:19999,1@127.0.0.2:19999",
    ] {
        refused(
            &node1_with(&[("controller.quorum.voters", Some(bad))]),
            "controller.quorum.voters",
            "",
        );
    }
    let v6 = node1_with(&[("controller.quorum.voters", Some("1@[::1]:19999"))]);
    assert_eq!(
        load(&v6).unwrap().cluster.unwrap().voters,
        vec![voter(1, "::1")]
    );
}

#[test]
fn the_quorum_must_be_findable() {
    refused(
        &node1_with(&[("controller.quorum.voters", None)]),
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
    );
    refused(
        &node1_with(&[("controller.quorum.voters", Some(" "))]),
        "controller.quorum.voters",
        "KRaft mode needs",
    );
}

#[test]
fn bootstrap_servers_are_accepted_instead_of_voters() {
    let servers = Some("127.0.0.1:19999,127.0.0.2:19999, [::1]:19999");
    let p = node1_with(&[
        ("controller.quorum.voters", None),
        ("controller.quorum.bootstrap.servers", servers),
    ]);
    let cluster = load(&p).unwrap().cluster.unwrap();
    assert!(cluster.voters.is_empty());
    let hosts: Vec<&str> = cluster
        .bootstrap_servers
        .iter()
        .map(|e| e.host.as_str())
        .collect();
    assert_eq!(hosts, ["127.0.0.1", "127.0.0.2", "::1"]);
    let bad = node1_with(&[("controller.quorum.bootstrap.servers", Some("127.0.0.1"))]);
    refused(&bad, "controller.quorum.bootstrap.servers", "host:port");
}

#[test]
fn a_broker_only_node_does_not_listen_as_a_controller() {
    let p = node1_with(&[("process.roles", Some("broker"))]);
    refused(
        &p,
        "listeners",
        "must not include the controller listener CONTROLLER",
    );
    let p = node1_with(&[
        ("process.roles", Some("broker")),
        ("listeners", Some("PLAINTEXT://127.0.0.4:19092")),
        ("advertised.listeners", None),
    ]);
    let cluster = load(&p).unwrap().cluster.unwrap();
    assert_eq!(cluster.roles, ProcessRoles::Broker);
    assert_eq!(cluster.controller_listener, None);
    assert_eq!(
        cluster.broker_listeners,
        vec![listener("PLAINTEXT", "127.0.0.4", 19092)]
    );
}

#[test]
fn a_controller_only_node_needs_no_client_listener() {
    let p = node1_with(&[
        ("process.roles", Some("controller")),
        ("listeners", Some("CONTROLLER://127.0.0.1:19999")),
        ("advertised.listeners", None),
    ]);
    let cluster = load(&p).unwrap().cluster.unwrap();
    assert_eq!(cluster.roles, ProcessRoles::Controller);
    assert!(cluster.broker_listeners.is_empty() && cluster.advertised_listener.is_none());
    let p = node1_with(&[("process.roles", Some("broker"))]);
    let p = BTreeMap::from_iter(p.into_iter().map(|(k, v)| {
        let v = if k == "listeners" {
            "CONTROLLER://127.0.0.1:19999".into()
        } else {
            v
        };
        (k, v)
    }));
    refused(&p, "listeners", "controller");
}

#[test]
fn roles_listeners_and_ports_are_checked() {
    refused(
        &node1_with(&[("process.roles", Some("broker,broker"))]),
        "process.roles",
        "twice",
    );
    refused(
        &node1_with(&[("process.roles", Some("observer"))]),
        "process.roles",
        "observer",
    );
    // Empty roles are Kafka's default: single-node mode.
    assert!(
        load(&node1_with(&[("process.roles", Some(""))]))
            .unwrap()
            .cluster
            .is_none()
    );
    // The research notes' P=19092, C=19093 would put shard 0 on the controller's port.
    let clash = Some("PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093");
    refused(
        &node1_with(&[("listeners", clash)]),
        "listeners",
        "shard's port",
    );
    let dup = Some("PLAINTEXT://127.0.0.1:19092,PLAINTEXT://127.0.0.1:19094");
    refused(&node1_with(&[("listeners", dup)]), "listeners", "twice");
    let ssl = Some("CONTROLLER:SSL,PLAINTEXT:PLAINTEXT");
    refused(
        &node1_with(&[("listener.security.protocol.map", ssl)]),
        "listener.security.protocol.map",
        "PLAINTEXT only",
    );
    // An explicit map must name the controller listener itself, as in Kafka.
    let no_ctrl = Some("PLAINTEXT:PLAINTEXT");
    refused(
        &node1_with(&[("listener.security.protocol.map", no_ctrl)]),
        "listener.security.protocol.map",
        "listener CONTROLLER",
    );
    let named = node1_with(&[
        (
            "listener.security.protocol.map",
            Some("CLIENT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ),
        (
            "listeners",
            Some("CLIENT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19999"),
        ),
        (
            "advertised.listeners",
            Some("CLIENT://broker1.example:19092"),
        ),
        (
            "listener.name.client.plain.sasl.jaas.config",
            Some(r#"x user_a="b";"#),
        ),
    ]);
    let cfg = load(&named).unwrap();
    assert_eq!(cfg.security_protocol, SecurityProtocol::SaslPlaintext);
    assert_eq!(cfg.advertised_host, "broker1.example");
}

#[test]
fn advertised_listeners_must_match_the_listeners() {
    let wrong = Some("OTHER://127.0.0.1:19092");
    refused(
        &node1_with(&[("advertised.listeners", wrong)]),
        "advertised.listeners",
        "OTHER",
    );
    let no_client = Some("CONTROLLER://127.0.0.1:19999");
    refused(
        &node1_with(&[("advertised.listeners", no_client)]),
        "advertised.listeners",
        "no entry for listener PLAINTEXT",
    );
    let wildcard = Some("PLAINTEXT://0.0.0.0:19092");
    refused(
        &node1_with(&[("advertised.listeners", wildcard)]),
        "advertised.listeners",
        "wildcard",
    );
    // Several entries: the client listener's is advertised, whatever the order.
    let both = Some("CONTROLLER://c1.example:19999,PLAINTEXT://b1.example:19092");
    let cfg = load(&node1_with(&[("advertised.listeners", both)])).unwrap();
    assert_eq!(cfg.advertised_host, "b1.example");
    assert_eq!(
        cfg.cluster.unwrap().advertised_listener.unwrap().host,
        "b1.example"
    );
}

#[test]
fn kraft_timeouts_and_sizes_are_read() {
    let p = node1_with(&[
        ("controller.quorum.election.timeout.ms", Some("500")),
        ("broker.session.timeout.ms", Some("3000")),
        ("metadata.log.dir", Some("/meta")),
        ("metadata.max.retention.bytes", Some("-1")),
    ]);
    let cluster = load(&p).unwrap().cluster.unwrap();
    assert_eq!(cluster.election_timeout, Duration::from_millis(500));
    assert_eq!(cluster.session_timeout, Duration::from_secs(3));
    assert_eq!(cluster.metadata_log_dir, PathBuf::from("/meta"));
    assert_eq!(cluster.metadata_retention_bytes, -1);
    for key in [
        "controller.quorum.fetch.timeout.ms",
        "broker.heartbeat.interval.ms",
        "metadata.max.retention.bytes",
        "offsets.topic.replication.factor",
        "transaction.state.log.min.isr",
    ] {
        refused(&node1_with(&[(key, Some("0"))]), key, "");
    }
}

/// Without process.roles the new keys change nothing: the effective settings are those of
/// before issue 13 (`single_node_effective.txt`, printed by the build before, plus the topic
/// keys added since: the replication throttles, unclean election and Kafka's inert topic keys,
/// the broker's `sluice.log.io` keys and `share.coordinator.state.topic.num.partitions`) plus one
/// default line per new key, and KRaft keys in the file are ignored.
#[test]
fn single_node_mode_only_grows_by_the_new_keys_default_lines() {
    let before = include_str!("single_node_effective.txt");
    let cfg = load(&props(&[])).unwrap();
    assert!(cfg.cluster.is_none());
    let (new, old): (Vec<_>, Vec<_>) = cfg
        .effective()
        .into_iter()
        .partition(|(key, _, _)| CLUSTER_KEYS.contains(&key.as_str()));
    let old: Vec<String> = old
        .iter()
        .map(|(k, v, s)| format!("{k}={v}  # {s}"))
        .collect();
    assert_eq!(old, before.lines().collect::<Vec<_>>());
    let new_keys: Vec<&str> = new.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(new_keys, CLUSTER_KEYS);
    assert!(new.iter().all(|(_, _, source)| *source == "default"));

    // The issue's file minus process.roles: the node of before, on the first listener.
    let p = node1_with(&[("process.roles", None)]);
    let cfg = load(&p).unwrap();
    assert!(cfg.cluster.is_none());
    assert_eq!(
        (cfg.host.as_str(), cfg.bootstrap_port),
        ("127.0.0.1", 19092)
    );
    assert_eq!(cfg.node_id, 1);
    // Single-node mode keeps reading the first entry's prefix as the protocol.
    let ctrl_first = props(&[("listeners", "CONTROLLER://127.0.0.1:19999")]);
    refused(
        &ctrl_first,
        "listeners",
        "CONTROLLER is not a security protocol",
    );
}
