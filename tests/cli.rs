//! End-to-end tests of the `sluice` tool subcommands: each starts the real broker binary,
//! runs the subcommands as subprocesses and asserts their exact output (table and JSON),
//! their exit codes and error messages. Values that vary between runs (topic ids,
//! timestamps, CRCs over timestamps) are masked before comparing.

mod cli_common;
mod common;

use cli_common::{Cli, create, mask_after, segment_file, sluice, start_broker};

/// Records with keys and two headers, as `produce --key-separator : --headers ...` sends.
const LINES: &str = "k1:first\nk2:second\nk1:third\n";

#[test]
fn topics_create_list_describe_alter_delete() {
    let broker = start_broker();
    let out = broker
        .cli(&[
            "topics",
            "create",
            "--topic",
            "orders",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=86400000",
            "--config",
            "cleanup.policy=compact",
        ])
        .ok();
    assert_eq!(out, "Created topic orders.\n");
    let out = broker
        .cli(&["topics", "create", "--topic", "events", "--output", "json"])
        .ok();
    assert_eq!(
        out,
        "{\"resource\":\"topic\",\"name\":\"events\",\"result\":\"created\"}\n"
    );

    assert_eq!(
        broker.cli(&["topics", "list"]).ok(),
        "TOPIC   PARTITIONS  REPLICATION-FACTOR\n\
         events  1           1\n\
         orders  2           1\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&broker.cli(&["topics", "list", "--output", "json"]).ok()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"topic": "events", "partitions": 1, "replication_factor": 1, "internal": false},
            {"topic": "orders", "partitions": 2, "replication_factor": 1, "internal": false},
        ])
    );

    let out = broker
        .cli(&["topics", "describe", "--topic", "orders"])
        .ok();
    assert_eq!(
        mask_after(&out, "TopicId: "),
        "Topic: orders  TopicId: *  PartitionCount: 2  ReplicationFactor: 1  \
         Configs: cleanup.policy=compact,retention.ms=86400000\n\
         PARTITION  LEADER  REPLICAS  ISR\n\
         0          0       0         0\n\
         1          1       1         1\n"
    );
    let out = broker
        .cli(&[
            "topics", "describe", "--topic", "orders", "--output", "json",
        ])
        .ok();
    let mut json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["topic_id"].as_str().unwrap().len(), 22, "{out}");
    json[0]["topic_id"] = "*".into();
    assert_eq!(
        json,
        serde_json::json!([{
            "topic": "orders",
            "topic_id": "*",
            "partition_count": 2,
            "replication_factor": 1,
            "configs": {"cleanup.policy": "compact", "retention.ms": "86400000"},
            "partitions": [
                {"partition": 0, "leader": 0, "replicas": [0], "isr": [0]},
                {"partition": 1, "leader": 1, "replicas": [1], "isr": [1]},
            ],
        }])
    );

    // Alter: add a partition.
    let out = broker
        .cli(&["topics", "alter", "--topic", "orders", "--partitions", "3"])
        .ok();
    assert_eq!(out, "Altered topic orders.\n");
    let out = broker
        .cli(&["topics", "describe", "--topic", "orders"])
        .ok();
    // Placement picks the least-loaded shard; only the new partition's presence is fixed.
    let last = out.lines().last().unwrap_or_default();
    assert!(
        out.contains("PartitionCount: 3") && last.starts_with("2  "),
        "{out}"
    );
    let err = broker
        .cli(&["topics", "alter", "--topic", "orders", "--partitions", "2"])
        .fails(2);
    assert_eq!(
        err,
        "sluice: error: topic 'orders' already has 3 partitions; --partitions 2 would not add any\n\
         hint: partitions can only be added; pass a larger --partitions\n"
    );

    // Alter a config: Sluice implements IncrementalAlterConfigs, so this must succeed (the
    // message for brokers that lack it is tested against a fake broker below).
    let run = broker.cli(&[
        "topics",
        "alter",
        "--topic",
        "orders",
        "--config",
        "retention.ms=1000",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = broker
        .cli(&["topics", "describe", "--topic", "orders"])
        .ok();
    assert!(out.contains("retention.ms=1000\n"), "{out}");

    // Delete several at once.
    let out = broker
        .cli(&["topics", "delete", "--topic", "orders", "--topic", "events"])
        .ok();
    assert_eq!(out, "Deleted topic orders.\nDeleted topic events.\n");
    assert_eq!(
        broker.cli(&["topics", "list"]).ok(),
        "TOPIC  PARTITIONS  REPLICATION-FACTOR\n"
    );
    assert_eq!(
        broker.cli(&["topics", "list", "--output", "json"]).ok(),
        "[]\n"
    );
}

#[test]
fn bad_arguments_and_failures_explain_themselves() {
    let broker = start_broker();
    create(&broker, "t", "1");

    // clap: missing required flag, exit 2.
    let err = broker.cli(&["topics", "create"]).fails(2);
    assert!(
        err.contains("required arguments were not provided") && err.contains("--topic"),
        "{err}"
    );
    let err = broker
        .cli(&["consume", "--topic", "t", "--offset", "5"])
        .fails(2);
    assert!(err.contains("--partition"), "{err}");
    let err = broker
        .cli(&["produce", "--topic", "t", "--compression", "brotli"])
        .fails(2);
    assert!(
        err.contains("'brotli' is not one of none, gzip, snappy, lz4, zstd"),
        "{err}"
    );
    let err = broker
        .cli(&["groups", "reset-offsets", "--group", "g"])
        .fails(2);
    assert!(err.contains("--to-earliest"), "{err}");

    // Our own validation, exit 2 with a hint.
    assert_eq!(
        broker
            .cli(&["topics", "create", "--topic", "u", "--partitions", "0"])
            .fails(2),
        "sluice: error: --partitions must be at least 1\n\
         hint: pass --partitions N with N >= 1, or leave it out for the broker's default\n"
    );
    assert_eq!(
        broker
            .cli(&["topics", "create", "--topic", "u", "--config", "retention"])
            .fails(2),
        "sluice: error: invalid --config 'retention': expected key=value\n\
         hint: write it as --config name=value, e.g. --config retention.ms=86400000\n"
    );
    assert_eq!(
        broker
            .cli_with_stdin(
                &["produce", "--topic", "t", "--key-separator", ":"],
                "a:1\nnokey\n"
            )
            .fails(2),
        "sluice: error: no key separator ':' on line 2\n\
         hint: every line needs KEY<sep>VALUE when --key-separator is given\n"
    );
    assert_eq!(
        broker
            .cli(&["consume", "--topic", "t", "--partition", "7"])
            .fails(2),
        "sluice: error: topic 't' has no partition 7\nhint: partitions are 0..0\n"
    );

    // Broker-side refusals, exit 1 with the broker's message and a hint.
    assert_eq!(
        broker.cli(&["topics", "create", "--topic", "t"]).fails(1),
        "sluice: error: creating topic 't': TopicAlreadyExists (topic 't' already exists)\n\
         hint: pick another name, or change it with `sluice topics alter`\n"
    );
    let err = broker
        .cli(&[
            "topics",
            "create",
            "--topic",
            "r",
            "--replication-factor",
            "3",
        ])
        .fails(1);
    assert!(
        err.starts_with("sluice: error: creating topic 'r': InvalidReplicationFactor"),
        "{err}"
    );
    assert!(err.ends_with("hint: a replication factor cannot exceed the number of nodes; on one node use --replication-factor 1\n"), "{err}");
    assert_eq!(
        broker
            .cli(&["topics", "describe", "--topic", "nope"])
            .fails(1),
        "sluice: error: topic 'nope' does not exist\n\
         hint: list the topics with `sluice topics list` and their partitions with `sluice topics describe`\n"
    );
    assert_eq!(
        broker
            .cli(&["topics", "delete", "--topic", "nope"])
            .fails(1),
        "sluice: error: deleting topic 'nope': UnknownTopicOrPartition (topic 'nope' does not exist)\n\
         hint: list the topics with `sluice topics list`\n"
    );

    // Nothing listening: exit 1 and a hint to start a broker.
    let run = sluice(&["topics", "list", "--bootstrap-server", "127.0.0.1:1"], "");
    assert_eq!(
        run.fails(1),
        "sluice: error: cannot connect to 127.0.0.1:1: Connection refused (os error 111)\n\
         hint: is a broker running there? Start one with `sluice serve` or pass --bootstrap-server HOST:PORT\n"
    );
    // dump-log needs real segment files.
    let err = sluice(&["dump-log", "/nonexistent/00000000000000000000.log"], "").fails(2);
    assert!(
        err.starts_with("sluice: error: cannot read /nonexistent/00000000000000000000.log"),
        "{err}"
    );
    let err = sluice(&["dump-log", "/etc/hostname"], "").fails(2);
    assert!(err.contains("the file name is not a base offset"), "{err}");
}

#[test]
fn produce_consume_round_trips_keys_headers_and_every_codec() {
    let broker = start_broker();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("rt-{codec}");
        create(&broker, &topic, "1");
        let out = broker
            .cli_with_stdin(
                &[
                    "produce",
                    "--topic",
                    &topic,
                    "--key-separator",
                    ":",
                    "--headers",
                    "src=test,codec=",
                    "--compression",
                    codec,
                ],
                LINES,
            )
            .ok();
        assert_eq!(
            out, "PARTITION  RECORDS  FIRST-OFFSET\n0          3        0\n",
            "{codec}"
        );
        let run = broker.cli(&[
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--print-key",
            "--print-headers",
            "--print-offset",
            "--max-messages",
            "3",
        ]);
        assert_eq!(run.stderr, "Processed a total of 3 messages\n");
        assert_eq!(
            run.ok(),
            "Offset:0\tsrc:test,codec:\tk1\tfirst\n\
             Offset:1\tsrc:test,codec:\tk2\tsecond\n\
             Offset:2\tsrc:test,codec:\tk1\tthird\n",
            "{codec}"
        );
    }

    // JSON lines, with the timestamp (set by the producer) checked then masked.
    let out = broker
        .cli(&[
            "consume",
            "--topic",
            "rt-zstd",
            "--from-beginning",
            "--max-messages",
            "1",
            "--output",
            "json",
        ])
        .ok();
    let mut json: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert!(json["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    json["timestamp"] = 0.into();
    assert_eq!(
        json,
        serde_json::json!({
            "partition": 0, "offset": 0, "timestamp": 0, "timestamp_type": "CreateTime",
            "key": "k1", "value": "first",
            "headers": [{"key": "src", "value": "test"}, {"key": "codec", "value": ""}],
        })
    );

    // --partition/--offset, and --timeout-ms ends a consumer that has seen everything.
    let run = broker.cli(&[
        "consume",
        "--topic",
        "rt-none",
        "--partition",
        "0",
        "--offset",
        "1",
        "--timeout-ms",
        "700",
    ]);
    assert_eq!(run.stderr, "Processed a total of 2 messages\n");
    assert_eq!(run.ok(), "second\nthird\n");

    // Unkeyed lines, an explicit partition, acks=0 and JSON output of produce.
    create(&broker, "plain", "2");
    let out = broker
        .cli_with_stdin(
            &[
                "produce",
                "--topic",
                "plain",
                "--partition",
                "1",
                "--output",
                "json",
            ],
            "a\nb\r\n",
        )
        .ok();
    assert_eq!(
        out,
        "{\n  \"topic\": \"plain\",\n  \"records\": 2,\n  \"partitions\": {\n    \"1\": {\n      \"records\": 2,\n      \"first_offset\": 0\n    }\n  }\n}\n"
    );
    let out = broker
        .cli_with_stdin(
            &[
                "produce",
                "--topic",
                "plain",
                "--partition",
                "1",
                "--acks",
                "0",
            ],
            "c\n",
        )
        .ok();
    assert_eq!(
        out,
        "PARTITION  RECORDS  FIRST-OFFSET\n1          1        -\n"
    );
    let out = broker
        .cli(&[
            "consume",
            "--topic",
            "plain",
            "--from-beginning",
            "--print-partition",
            "--print-key",
            "--max-messages",
            "3",
            "--timeout-ms",
            "5000",
        ])
        .ok();
    assert_eq!(
        out,
        "Partition:1\tnull\ta\nPartition:1\tnull\tb\nPartition:1\tnull\tc\n"
    );
}

#[test]
fn dump_log_shows_produced_records_after_sigterm() {
    let mut broker = start_broker();
    create(&broker, "d", "1");
    broker
        .cli_with_stdin(
            &[
                "produce",
                "--topic",
                "d",
                "--key-separator",
                ":",
                "--headers",
                "h=v",
            ],
            LINES,
        )
        .ok();
    broker
        .cli_with_stdin(
            &["produce", "--topic", "d", "--compression", "gzip"],
            "plain\n",
        )
        .ok();
    broker.stop();

    let log = segment_file(broker.data_dir(), "d", 0, "log");
    let out = sluice(&["dump-log", "--print-data-log", &log], "").ok();
    let masked = mask_after(&mask_after(&out, "CreateTime: "), "crc: ");
    assert_eq!(
        masked,
        format!(
            "Dumping {log}\n\
             Log starting offset: 0\n\
             baseOffset: 0 lastOffset: 2 count: 3 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false position: 0 CreateTime: * size: 116 magic: 2 compresscodec: none crc: * isvalid: true\n\
             | offset: 0 CreateTime: * keySize: 2 valueSize: 5 sequence: -1 headerKeys: [h] headers: [h=v] key: k1 payload: first\n\
             | offset: 1 CreateTime: * keySize: 2 valueSize: 6 sequence: -1 headerKeys: [h] headers: [h=v] key: k2 payload: second\n\
             | offset: 2 CreateTime: * keySize: 2 valueSize: 5 sequence: -1 headerKeys: [h] headers: [h=v] key: k1 payload: third\n\
             baseOffset: 3 lastOffset: 3 count: 1 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false position: 116 CreateTime: * size: 93 magic: 2 compresscodec: gzip crc: * isvalid: true\n\
             | offset: 3 CreateTime: * keySize: -1 valueSize: 5 sequence: -1 headerKeys: [] headers: [] key: null payload: plain\n"
        )
    );

    // Without --print-data-log: batches only. JSON carries the same facts.
    let out = sluice(&["dump-log", &log], "").ok();
    assert_eq!(out.lines().count(), 4, "{out}");
    let json: serde_json::Value = serde_json::from_str(
        &sluice(
            &["dump-log", &log, "--print-data-log", "--output", "json"],
            "",
        )
        .ok(),
    )
    .unwrap();
    let batches = &json[0]["batches"];
    assert_eq!(json[0]["type"], "log");
    assert_eq!(batches[0]["count"], 3);
    assert_eq!(batches[1]["compression"], "gzip");
    assert_eq!(batches[1]["records"][0]["payload"], "plain");
    assert_eq!(batches[0]["records"][1]["key"], "k2");
    assert_eq!(
        batches[0]["records"][0]["headers"],
        serde_json::json!([["h", "v"]])
    );

    // Index files: one entry per batch at this index interval or a sparse few; each line
    // names an offset inside the log and a position where a batch starts.
    let index = segment_file(broker.data_dir(), "d", 0, "index");
    let out = sluice(&["dump-log", &index], "").ok();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(format!("Dumping {index}").as_str()));
    for line in lines {
        assert!(
            line == "offset: 2 position: 0" || line == "offset: 3 position: 116",
            "{out}"
        );
    }
    let timeindex = segment_file(broker.data_dir(), "d", 0, "timeindex");
    let out = sluice(&["dump-log", &timeindex], "").ok();
    assert!(out.starts_with(&format!("Dumping {timeindex}\n")), "{out}");
    for line in out.lines().skip(1) {
        assert!(
            line.starts_with("timestamp: ")
                && (line.ends_with(" offset: 2") || line.ends_with(" offset: 3")),
            "{out}"
        );
    }

    // A torn tail is reported, not hidden.
    let scratch = tempfile::tempdir().unwrap();
    let torn = scratch.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 0]);
    std::fs::write(&torn, bytes).unwrap();
    let out = sluice(&["dump-log", torn.to_str().unwrap()], "").ok();
    assert!(
        out.ends_with(&format!(
            "Found 10 invalid bytes at the end of {}\n",
            torn.display()
        )),
        "{out}"
    );
}

#[test]
fn groups_commit_describe_reset_and_delete() {
    let broker = start_broker();
    create(&broker, "g", "1");
    broker
        .cli_with_stdin(&["produce", "--topic", "g"], "a\nb\nc\n")
        .ok();
    assert_eq!(
        broker.cli(&["groups", "list"]).ok(),
        "GROUP  TYPE  PROTOCOL-TYPE  STATE\n"
    );

    // Consume two as group "app": it commits offset 2 on exit.
    let out = broker
        .cli(&[
            "consume",
            "--topic",
            "g",
            "--group",
            "app",
            "--from-beginning",
            "--max-messages",
            "2",
        ])
        .ok();
    assert_eq!(out, "a\nb\n");
    let out = broker.cli(&["groups", "list"]).ok();
    assert!(
        out.starts_with("GROUP  TYPE     PROTOCOL-TYPE  STATE\napp    classic "),
        "{out}"
    );
    let out = broker.cli(&["groups", "describe", "--group", "app"]).ok();
    assert_eq!(
        mask_after(&out, "Coordinator: "),
        "Group: app  State: Empty  Coordinator: *  Members: 0\n\
         TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID\n\
         g      0          2               3               1    -            -     -\n"
    );
    let json: serde_json::Value = serde_json::from_str(
        &broker
            .cli(&["groups", "describe", "--group", "app", "--output", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(json["partitions"][0]["lag"], 1);
    assert_eq!(json["partitions"][0]["current_offset"], 2);

    // The next run resumes at the commit.
    let out = broker
        .cli(&[
            "consume",
            "--topic",
            "g",
            "--group",
            "app",
            "--max-messages",
            "1",
        ])
        .ok();
    assert_eq!(out, "c\n");

    // Reset: dry run by default, then --execute.
    let out = broker
        .cli(&[
            "groups",
            "reset-offsets",
            "--group",
            "app",
            "--topic",
            "g",
            "--to-earliest",
        ])
        .ok();
    assert_eq!(
        out,
        "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  NEW-OFFSET\n\
         app    g      0          3               0\n\
         (dry run: nothing was committed; add --execute to apply)\n"
    );
    let out = broker
        .cli(&[
            "groups",
            "reset-offsets",
            "--group",
            "app",
            "--to-offset",
            "1",
            "--execute",
            "--output",
            "json",
        ])
        .ok();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"executed": true, "offsets": [
            {"group": "app", "topic": "g", "partition": 0, "current_offset": 3, "new_offset": 1}
        ]})
    );
    let out = broker
        .cli(&[
            "groups",
            "reset-offsets",
            "--group",
            "app",
            "--to-datetime",
            "2000-01-01T00:00:00Z",
        ])
        .ok();
    assert!(
        out.contains("app    g      0          1               0\n"),
        "{out}"
    );
    let out = broker
        .cli(&[
            "consume",
            "--topic",
            "g",
            "--group",
            "app",
            "--max-messages",
            "2",
        ])
        .ok();
    assert_eq!(out, "b\nc\n");

    assert_eq!(
        broker.cli(&["groups", "delete", "--group", "app"]).ok(),
        "Deleted group app.\n"
    );
    // Kafka describes a deleted group as Dead; Sluice answers GROUP_ID_NOT_FOUND. Either way
    // the tool fails and says so.
    let run = broker.cli(&["groups", "describe", "--group", "app"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("GroupIdNotFound") || run.stderr.contains("does not exist"),
        "{run:?}"
    );
}

#[test]
fn tuning_check_reports_every_limit_read_only() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tuning/check");
    // python3 is part of the test machine (tests/run-all.sh needs it too): its absence fails.
    let out = std::process::Command::new("python3")
        .args([script, "--json", "--data-dir", env!("CARGO_MANIFEST_DIR")])
        .output()
        .expect("python3 runs tuning/check");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            for field in ["value", "recommended", "status", "why", "change"] {
                assert!(r[field].is_string(), "{r}");
            }
            assert!(
                ["ok", "warn", "info"].contains(&r["status"].as_str().unwrap()),
                "{r}"
            );
            r["check"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "kernel",
            "io_uring",
            "memlock limit",
            "cpu governor",
            "transparent huge pages",
            "disk scheduler",
            "loopback MTU",
            "NIC MTU",
            "open files limit",
            "dirty background writeback",
            "dirty throttle threshold",
            "dirty expiry",
            "read-ahead",
            "disk IRQ affinity",
            "CPU affinity",
            "VM memory (free page reporting)"
        ]
    );
}

/// The tools against a different Kafka implementation: librdkafka's mock cluster (three
/// brokers, its own API version ranges, partitions led by different brokers).
#[test]
fn tools_work_against_another_kafka_implementation() {
    let mock = rdkafka::mocking::MockCluster::new(3).unwrap();
    mock.create_topic("mock", 3, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let run = |args: &[&str], stdin: &str| {
        let mut all = args.to_vec();
        all.extend(["--bootstrap-server", &bootstrap]);
        sluice(&all, stdin)
    };
    let out = run(&["topics", "describe", "--topic", "mock"], "").ok();
    assert_eq!(
        mask_after(&out, "TopicId: "),
        "Topic: mock  TopicId: *  PartitionCount: 3  ReplicationFactor: 1  Configs:\n\
         PARTITION  LEADER  REPLICAS  ISR\n\
         0          1       1         1\n\
         1          2       2         2\n\
         2          3       3         3\n"
    );
    // Keys are spread by Kafka's murmur2 partitioner, each batch sent to its leader.
    let out = run(
        &[
            "produce",
            "--topic",
            "mock",
            "--key-separator",
            "=",
            "--compression",
            "lz4",
        ],
        "a=1\nb=2\nc=3\nd=4\n",
    )
    .ok();
    assert_eq!(
        out,
        "PARTITION  RECORDS  FIRST-OFFSET\n1          2        0\n2          2        0\n"
    );
    let consume = [
        "consume",
        "--topic",
        "mock",
        "--group",
        "mg",
        "--print-key",
        "--print-partition",
    ];
    let mut args = consume.to_vec();
    args.extend(["--from-beginning", "--max-messages", "4"]);
    assert_eq!(
        run(&args, "").ok(),
        "Partition:1\ta\t1\nPartition:1\tc\t3\nPartition:2\tb\t2\nPartition:2\td\t4\n"
    );
    // The group committed its position: a second run sees only what came after.
    run(
        &["produce", "--topic", "mock", "--partition", "0"],
        "late\n",
    )
    .ok();
    let mut args = consume.to_vec();
    args.extend(["--max-messages", "1", "--timeout-ms", "5000"]);
    assert_eq!(run(&args, "").ok(), "Partition:0\tnull\tlate\n");

    // What this broker lacks is named, with a hint, and exit code 1.
    let err = run(&["topics", "create", "--topic", "n"], "").fails(1);
    let err = mask_after(&err, "broker 127.0.0.1:");
    assert_eq!(
        err,
        "sluice: error: broker 127.0.0.1:* does not implement CreateTopics\n\
         hint: this broker does not implement that API; upgrade it or use a tool it supports\n"
    );
    let err = run(
        &[
            "configs",
            "alter",
            "--topic",
            "mock",
            "--add-config",
            "retention.ms=1",
        ],
        "",
    )
    .fails(1);
    assert_eq!(
        err,
        format!(
            "sluice: error: the broker at {bootstrap} cannot change configs at run time: it does not implement IncrementalAlterConfigs\n\
             hint: set configs when creating the topic (`sluice topics create --config name=value`), or upgrade the broker\n"
        )
    );
}
