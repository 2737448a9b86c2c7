//! Tests of the broker configuration: the key table, defaults, sources, errors.

use super::*;

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_give_shard_ports_after_bootstrap() {
    let cfg = BrokerConfig::from_properties(&props(&[]), &Overrides::default(), 2).unwrap();
    assert_eq!(cfg.bootstrap_port, 9092);
    assert_eq!(cfg.shard_ports, vec![9093, 9094]);
    assert_eq!(cfg.broker_id(1), 1);
}

#[test]
fn flags_override_file() {
    let p = props(&[
        ("listeners", "PLAINTEXT://0.0.0.0:7000"),
        ("num.partitions", "3"),
    ]);
    let flags = Overrides {
        port: Some(8000),
        cores: Some(1),
        ..Default::default()
    };
    let cfg = BrokerConfig::from_properties(&p, &flags, 2).unwrap();
    assert_eq!(cfg.bootstrap_port, 8000);
    assert_eq!(cfg.host, "0.0.0.0");
    assert_eq!(cfg.advertised_host, "127.0.0.1");
    assert_eq!(cfg.num_partitions, 3);
    assert_eq!(cfg.shard_ports, vec![8001]);
}

#[test]
fn group_keys_are_parsed() {
    let p = props(&[
        ("offsets.topic.num.partitions", "7"),
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.retention.minutes", "2"),
        ("group.max.size", "3"),
    ]);
    let cfg = BrokerConfig::from_properties(&p, &Overrides::default(), 1).unwrap();
    assert_eq!(cfg.offsets_topic_num_partitions, 7);
    assert_eq!(cfg.group.initial_rebalance_delay_ms, 0);
    assert_eq!(cfg.group.offsets_retention_ms, 120_000);
    assert_eq!(cfg.group.max_size, 3);
    let bad = props(&[("offsets.topic.num.partitions", "0")]);
    let err = BrokerConfig::from_properties(&bad, &Overrides::default(), 1).unwrap_err();
    assert!(err.to_string().contains("offsets.topic.num.partitions"));
}

#[test]
fn network_limits_are_read_and_shown_with_their_source() {
    let p = props(&[
        ("max.connections.per.ip", "5"),
        ("connections.max.idle.ms", "-1"),
    ]);
    let cfg = BrokerConfig::from_properties(&p, &Overrides::default(), 1).unwrap();
    assert_eq!(cfg.network.max_connections_per_ip, 5);
    assert_eq!(cfg.network.idle_timeout(), None);
    let shown = cfg.effective();
    let find = |key: &str| shown.iter().find(|(k, _, _)| k == key).cloned();
    assert_eq!(
        find("max.connections.per.ip"),
        Some(("max.connections.per.ip".into(), "5".into(), "file"))
    );
    assert_eq!(
        find("sasl.server.max.receive.size"),
        Some((
            "sasl.server.max.receive.size".into(),
            "524288".into(),
            "default"
        ))
    );
    let zero = props(&[("max.connections.per.ip", "0")]);
    let err = BrokerConfig::from_properties(&zero, &Overrides::default(), 1).unwrap_err();
    assert!(err.to_string().contains("max.connections.per.ip"), "{err}");
}

#[test]
fn bad_values_name_the_key() {
    let err = BrokerConfig::from_properties(
        &props(&[("num.partitions", "many")]),
        &Overrides::default(),
        1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("num.partitions"), "{err}");
    let err = BrokerConfig::from_properties(
        &props(&[("log.segment.bytes", "-5")]),
        &Overrides::default(),
        1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("log.segment.bytes"), "{err}");
}

/// The value `effective()` shows for `key`, and its source.
fn shown(cfg: &BrokerConfig, key: &str) -> Option<(String, &'static str)> {
    cfg.effective()
        .into_iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, s)| (v, s))
}

#[test]
fn table_has_each_key_once_and_none_of_the_topic_defaults() {
    let mut seen = std::collections::BTreeSet::new();
    for key in BROKER_KEYS {
        for name in std::iter::once(&key.name).chain(key.aliases) {
            assert!(seen.insert(*name), "{name} is in BROKER_KEYS twice");
            // A topic default under this name would never be reached: the table comes first.
            let topic = TopicDefaults::default().apply_broker_key(name, "1");
            assert!(matches!(topic, Ok(false)), "{name} is also a topic default");
        }
        assert!(
            !(key.sensitive && key.show.is_some()),
            "{} is secret but shown",
            key.name
        );
    }
}

#[test]
fn defaults_are_the_tables_and_agree_with_the_field_types() {
    let cfg = BrokerConfig::from_properties(&props(&[]), &Overrides::default(), 1).unwrap();
    for key in BROKER_KEYS {
        if let (KeyDefault::Value(default), Some(_)) = (&key.default, key.show) {
            assert_eq!(
                shown(&cfg, key.name),
                Some((default.to_string(), "default")),
                "{}",
                key.name
            );
        }
    }
    // The sub-configurations keep Default impls of their own (other code builds them
    // alone); the table must not contradict them.
    assert_eq!(cfg.network, NetworkLimits::default());
    assert_eq!(cfg.group, GroupConfig::default());
    assert_eq!(cfg.sasl.mechanisms, SaslConfig::default().mechanisms);
    assert_eq!(cfg.writeback_bytes, DEFAULT_WRITEBACK_BYTES);
}

#[test]
fn every_shown_key_round_trips_through_the_file() {
    for key in BROKER_KEYS {
        let Some(_) = key.show else { continue };
        // The default, and a neighbour of it, so a `show` reading the wrong field of the
        // same default is caught; the computed defaults get a value of their own.
        let mut values: Vec<String> = match key.default {
            KeyDefault::Value(v) => vec![v.to_string()],
            KeyDefault::Computed(_) | KeyDefault::Unset => vec![],
        };
        if let Some(v) = values.first() {
            match (v.parse::<i64>(), v.parse::<bool>()) {
                (Ok(n), _) => values.push((n - 1).to_string()),
                (_, Ok(b)) => values.push((!b).to_string()),
                _ => {}
            }
        }
        values.extend(match key.name {
            "advertised.listeners" => vec!["PLAINTEXT://broker.example:9092".to_string()],
            "sluice.cores" => vec!["1".to_string()],
            "sluice.shard.ports" => vec!["9500".to_string()],
            // Alone, without node.id and voters, these two fail KRaft's checks (skipped).
            "process.roles" => vec!["broker".to_string(), "broker,controller".to_string()],
            "controller.quorum.voters" => vec!["1@127.0.0.1:9093,2@[::1]:9093".to_string()],
            "controller.quorum.bootstrap.servers" => vec!["127.0.0.1:9093".to_string()],
            "controller.listener.names" => vec!["CONTROLLER".to_string()],
            "metadata.log.dir" => vec!["/meta".to_string()],
            "broker.rack" => vec!["rack-a".to_string()],
            "authorizer.class.name" => vec![
                crate::acl::authorizer::STANDARD_AUTHORIZER.to_string(),
                String::new(),
            ],
            "super.users" => vec!["User:admin;User:broker".to_string()],
            "replica.selector.class" => {
                vec!["org.apache.kafka.common.replica.RackAwareReplicaSelector".to_string()]
            }
            _ => vec![],
        });
        assert!(!values.is_empty(), "{} has no value to try", key.name);
        for value in values {
            let p = props(&[(key.name, &value)]);
            let Ok(cfg) = BrokerConfig::from_properties(&p, &Overrides::default(), 1) else {
                // e.g. max.connections.per.ip=2147483646 is fine, but 0 needs overrides.
                continue;
            };
            assert_eq!(
                shown(&cfg, key.name),
                Some((value.clone(), "file")),
                "{}={value}",
                key.name
            );
        }
    }
    let p = props(&[("broker.id", "4"), ("log.dir", "/d")]);
    let cfg = BrokerConfig::from_properties(&p, &Overrides::default(), 1).unwrap();
    assert_eq!((cfg.node_id, cfg.data_dir), (4, PathBuf::from("/d")));
}

#[test]
fn every_key_shown_is_in_the_table_and_secrets_never_are() {
    let jaas = r#"x required user_alice="s3cret";"#;
    let p = props(&[
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:9092"),
        (PLAIN_JAAS_KEY, jaas),
    ]);
    let cfg = BrokerConfig::from_properties(&p, &Overrides::default(), 1).unwrap();
    for (key, value, _) in cfg.effective() {
        if key.starts_with("(topic default) ") {
            continue;
        }
        let spec = broker_keys::find(&key).unwrap_or_else(|| panic!("{key} not in table"));
        assert!(spec.show.is_some() && !spec.sensitive, "{key}");
        assert!(!value.contains("s3cret"), "{key}={value}");
    }
    assert!(is_sensitive_key(PLAIN_JAAS_KEY));
    assert!(is_sensitive_key("ssl.keystore.password"));
    assert!(!is_sensitive_key("num.partitions"));
    let bad = props(&[(PLAIN_JAAS_KEY, r#"user_alice=s3cret"#)]);
    let err = BrokerConfig::from_properties(&bad, &Overrides::default(), 1).unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains(PLAIN_JAAS_KEY) && !err.contains("s3cret"),
        "{err}"
    );
}

#[test]
fn several_listeners_each_get_their_ports_protocol_users_and_tls() {
    let p = props(&[
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9192,SASL_SSL://0.0.0.0:9292",
        ),
        ("advertised.listeners", "SASL_SSL://broker.example:9292"),
        ("ssl.keystore.location", "/etc/sluice/server.pem"),
        (
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        ),
    ]);
    let cfg = BrokerConfig::from_properties(&p, &Overrides::default(), 2).unwrap();
    let summary: Vec<_> = cfg
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.protocol,
                l.bootstrap_port,
                l.shard_ports.clone(),
                l.advertised_host.as_str(),
                l.tls.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "PLAINTEXT",
                SecurityProtocol::Plaintext,
                9092,
                vec![9093, 9094],
                "127.0.0.1",
                false
            ),
            (
                "SSL",
                SecurityProtocol::Ssl,
                9192,
                vec![9193, 9194],
                "127.0.0.1",
                true
            ),
            (
                "SASL_SSL",
                SecurityProtocol::SaslSsl,
                9292,
                vec![9293, 9294],
                "broker.example",
                true
            ),
        ]
    );
    assert!(cfg.listeners[2].sasl.plain_users.is_empty());
    let shown: BTreeMap<String, String> = cfg
        .effective()
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();
    assert_eq!(
        shown["listeners"],
        "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9192,SASL_SSL://0.0.0.0:9292"
    );
    assert_eq!(
        shown["advertised.listeners"],
        "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9192,SASL_SSL://broker.example:9292"
    );
}

#[test]
fn listener_mistakes_are_refused_with_the_reason() {
    let keystore = ("ssl.keystore.location", "/k.pem");
    for (pairs, words) in [
        (
            vec![
                (
                    "listeners",
                    "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093",
                ),
                keystore,
            ],
            "port 9093 is used by listeners PLAINTEXT and SSL",
        ),
        (
            vec![(
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9192",
            )],
            "needs ssl.keystore.location",
        ),
        (
            vec![
                (
                    "listeners",
                    "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9192",
                ),
                keystore,
            ],
            "listener.name.sasl_ssl.plain.sasl.jaas.config",
        ),
        (
            vec![
                (
                    "listeners",
                    "PLAINTEXT://127.0.0.1:9092,EXTERNAL://127.0.0.1:9192",
                ),
                keystore,
            ],
            "no security protocol for listener EXTERNAL",
        ),
    ] {
        let err = BrokerConfig::from_properties(&props(&pairs), &Overrides::default(), 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains(words), "{pairs:?}: {err}");
    }
    let mapped = props(&[
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,EXTERNAL://127.0.0.1:9192",
        ),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,EXTERNAL:SSL",
        ),
        ("listener.name.external.ssl.keystore.location", "/k.pem"),
    ]);
    let cfg = BrokerConfig::from_properties(&mapped, &Overrides::default(), 2).unwrap();
    assert_eq!(cfg.listeners[1].protocol, SecurityProtocol::Ssl);
    assert!(is_sensitive_key("listener.name.external.ssl.keystore.key"));
}

#[test]
fn consumer_group_timeouts_are_checked_against_their_bounds() {
    let parse = |pairs: &[(&str, &str)]| {
        let props: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BrokerConfig::from_properties(&props, &Overrides::default(), 1)
    };
    let cfg = parse(&[]).expect("Kafka's defaults are consistent");
    assert_eq!(cfg.group.consumer.session_timeout_ms, 45_000);
    let low = parse(&[("group.consumer.session.timeout.ms", "6000")]).unwrap_err();
    assert!(
        low.to_string()
            .contains("group.consumer.min.session.timeout.ms"),
        "{low}"
    );
    parse(&[
        ("group.consumer.session.timeout.ms", "6000"),
        ("group.consumer.min.session.timeout.ms", "6000"),
    ])
    .expect("bounds lowered with it");
    let slow = parse(&[("group.consumer.heartbeat.interval.ms", "50000")]).unwrap_err();
    assert!(slow.to_string().contains("heartbeat"), "{slow}");
}
