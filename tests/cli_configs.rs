//! End-to-end tests of `sluice configs`: describe and alter topic and broker configs against
//! the real broker binary, and dynamic broker configs that change at run time and survive a
//! restart. Exact output is asserted, with run-varying values masked.

mod cli_common;
mod common;

use cli_common::{Cli, create, start_broker};
use common::Broker;

#[test]
fn configs_describe_and_alter() {
    let broker = start_broker();
    let out = broker
        .cli(&[
            "topics",
            "create",
            "--topic",
            "c",
            "--config",
            "retention.ms=1000",
        ])
        .ok();
    assert_eq!(out, "Created topic c.\n");
    assert_eq!(
        broker.cli(&["configs", "describe", "--topic", "c"]).ok(),
        "Non-default configs for topic c:\n\
         NAME          VALUE  SOURCE                READ-ONLY\n\
         retention.ms  1000   DYNAMIC_TOPIC_CONFIG  false\n"
    );
    let json: serde_json::Value = serde_json::from_str(
        &broker
            .cli(&["configs", "describe", "--topic", "c", "--output", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "resource": "topic c",
            "configs": [{"name": "retention.ms", "value": "1000", "source": "DYNAMIC_TOPIC_CONFIG",
                         "read_only": false, "sensitive": false}],
        })
    );
    let all = broker
        .cli(&["configs", "describe", "--topic", "c", "--all"])
        .ok();
    assert!(all.starts_with("All configs for topic c:\nNAME "), "{all}");
    assert!(all.contains("\ncleanup.policy "), "{all}");
    let broker_configs = broker
        .cli(&["configs", "describe", "--broker", "0", "--all"])
        .ok();
    assert!(
        broker_configs.starts_with("All configs for broker 0:\n"),
        "{broker_configs}"
    );

    let err = broker.cli(&["configs", "describe"]).fails(2);
    assert!(err.contains("--topic") && err.contains("--broker"), "{err}");
    let err = broker
        .cli(&["configs", "describe", "--topic", "missing"])
        .fails(1);
    assert!(
        err.starts_with("sluice: error: topic 'missing' does not exist\n"),
        "{err}"
    );

    let run = broker.cli(&[
        "configs",
        "alter",
        "--topic",
        "c",
        "--add-config",
        "retention.ms=2000,segment.ms=60000",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "Completed updating config for topic c.\n");
    let out = broker.cli(&["configs", "describe", "--topic", "c"]).ok();
    assert!(out.contains("retention.ms  2000"), "{out}");
    let err = broker
        .cli(&["configs", "alter", "--topic", "c", "--add-config", "oops"])
        .fails(2);
    assert!(
        err.starts_with("sluice: error: invalid --add-config 'oops'"),
        "{err}"
    );
}

/// `sluice configs alter --broker 0 <flag> <value>`.
fn alter_broker_0(broker: &Broker, flag: &str, value: &str) -> cli_common::Run {
    broker.cli(&["configs", "alter", "--broker", "0", flag, value])
}

/// The entry `name` of `sluice configs describe ... --all --output json`: (value, source).
fn described(broker: &Broker, resource: &[&str], name: &str) -> (String, String) {
    let mut args = vec!["configs", "describe"];
    args.extend_from_slice(resource);
    args.extend(["--all", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&broker.cli(&args).ok()).unwrap();
    let entry = json["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {json}"))
        .clone();
    (
        entry["value"].as_str().unwrap().to_string(),
        entry["source"].as_str().unwrap().to_string(),
    )
}

#[test]
fn broker_configs_change_at_run_time_and_survive_a_restart() {
    let mut broker = start_broker();
    create(&broker, "dyn", "1");
    let set = alter_broker_0(
        &broker,
        "--add-config",
        "log.retention.ms=1234,log.flush.interval.messages=99",
    )
    .ok();
    assert_eq!(set, "Completed updating config for broker 0.\n");
    // Every broker of the node and every topic without its own value see the new default.
    for broker_id in ["0", "1"] {
        assert_eq!(
            described(&broker, &["--broker", broker_id], "log.retention.ms"),
            ("1234".into(), "DYNAMIC_BROKER_CONFIG".into())
        );
    }
    assert_eq!(
        described(&broker, &["--topic", "dyn"], "retention.ms"),
        ("1234".into(), "DYNAMIC_BROKER_CONFIG".into())
    );
    assert_eq!(
        described(&broker, &["--topic", "dyn"], "flush.messages"),
        ("99".into(), "DYNAMIC_BROKER_CONFIG".into())
    );

    // Settings fixed at start-up are refused with the way to change them.
    let err = alter_broker_0(&broker, "--add-config", "num.partitions=7").fails(1);
    assert!(
        err.contains("num.partitions cannot be changed at run time: set it in the config file"),
        "{err}"
    );
    let err = alter_broker_0(&broker, "--add-config", "log.retention.ms=soon").fails(1);
    assert!(err.contains("log.retention.ms"), "{err}");

    broker.restart_graceful();
    assert_eq!(
        described(&broker, &["--topic", "dyn"], "retention.ms"),
        ("1234".into(), "DYNAMIC_BROKER_CONFIG".into())
    );
    let deleted = alter_broker_0(&broker, "--delete-config", "log.retention.ms").ok();
    assert_eq!(deleted, "Completed updating config for broker 0.\n");
    assert_eq!(
        described(&broker, &["--topic", "dyn"], "retention.ms"),
        ("604800000".into(), "DEFAULT_CONFIG".into())
    );
    assert_eq!(
        described(&broker, &["--broker", "0"], "log.flush.interval.messages"),
        ("99".into(), "DYNAMIC_BROKER_CONFIG".into())
    );
}
