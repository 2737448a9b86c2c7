//! Transactions against a real two-shard Sluice broker with librdkafka (the `rdkafka`
//! crate): commit and abort across partitions of both shards, read_committed versus
//! read_uncommitted consumers, fencing by a second producer with the same transactional
//! id, an open transaction holding read_committed consumers back (until it ends or times
//! out), offsets sent to a transaction whose group lives on the other shard (visible on
//! commit, unchanged on abort, kept across `kill -9`), and restarts (SIGTERM and
//! `kill -9`) in the middle of a transaction: never half-visible. Every test starts its own
//! broker process.

mod broker_common;
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Partitions per test topic; placement alternates shards, so both shards hold some.
const PARTITIONS: i32 = 4;
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates a test topic with [`PARTITIONS`] partitions through librdkafka's admin API.
fn create_topic(bootstrap: &str, name: &str) {
    broker_common::create_topic(bootstrap, name, PARTITIONS);
}

fn txn_producer(bootstrap: &str, id: &str, timeout_ms: u32) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", timeout_ms.to_string())
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer");
    producer
        .init_transactions(OP_TIMEOUT)
        .expect("init_transactions");
    producer
}

/// Sends "<tag>-<partition>-<i>" to every partition and waits until all are acknowledged.
fn send_all(producer: &BaseProducer, topic: &str, tag: &str, per_partition: i32) {
    for p in 0..PARTITIONS {
        for i in 0..per_partition {
            let value = format!("{tag}-{p}-{i}");
            producer
                .send(BaseRecord::<(), _>::to(topic).partition(p).payload(&value))
                .expect("enqueue");
        }
    }
    producer.flush(OP_TIMEOUT).expect("flush");
}

fn consumer(bootstrap: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("reader-{isolation}-{}", std::process::id()),
        )
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

fn assign_from_start(consumer: &BaseConsumer, topic: &str) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
}

/// Polls for `window`, returning every value seen.
fn read_for(consumer: &BaseConsumer, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut values = Vec::new();
    while Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100))
            && let Some(Ok(v)) = message.payload_view::<str>()
        {
            values.push(v.to_owned());
        }
    }
    values
}

/// Polls until `done(values)` holds or `limit` passes; returns every value seen.
fn read_until(
    consumer: &BaseConsumer,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut values = Vec::new();
    while Instant::now() < deadline && !done(&values) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100))
            && let Some(Ok(v)) = message.payload_view::<str>()
        {
            values.push(v.to_owned());
        }
    }
    values
}

fn count_tag(values: &[String], tag: &str) -> usize {
    let prefix = format!("{tag}-");
    values.iter().filter(|v| v.starts_with(&prefix)).count()
}

#[test]
fn commit_and_abort_across_shards_respect_isolation_levels() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders");
    let producer = txn_producer(&bootstrap, "tx-commit-abort", 30_000);
    for (tag, commit) in [("c1", true), ("a1", false), ("c2", true)] {
        producer.begin_transaction().expect("begin");
        send_all(&producer, "orders", tag, 10);
        if commit {
            producer.commit_transaction(OP_TIMEOUT).expect("commit");
        } else {
            producer.abort_transaction(OP_TIMEOUT).expect("abort");
        }
    }
    let committed = consumer(&bootstrap, "read_committed");
    assign_from_start(&committed, "orders");
    let seen = read_until(&committed, OP_TIMEOUT, |v| {
        count_tag(v, "c1") + count_tag(v, "c2") >= 80
    });
    // Anything after the last commit would have arrived by now; look a little longer.
    let seen = [seen, read_for(&committed, Duration::from_secs(1))].concat();
    assert_eq!(count_tag(&seen, "c1"), 40, "read_committed sees all of c1");
    assert_eq!(count_tag(&seen, "c2"), 40, "read_committed sees all of c2");
    assert_eq!(
        count_tag(&seen, "a1"),
        0,
        "read_committed never sees aborted records"
    );

    let uncommitted = consumer(&bootstrap, "read_uncommitted");
    assign_from_start(&uncommitted, "orders");
    let all = read_until(&uncommitted, OP_TIMEOUT, |v| v.len() >= 120);
    assert_eq!(all.len(), 120, "read_uncommitted sees every data record");
    assert_eq!(count_tag(&all, "a1"), 40);
    // Per partition, a read_committed reader keeps producer order.
    let mut per_partition: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for v in seen.iter().filter(|v| v.starts_with("c1-")) {
        let mut parts = v.split('-').skip(1);
        let p = parts.next().unwrap_or_default().to_owned();
        let i: i32 = parts.next().and_then(|i| i.parse().ok()).unwrap_or(-1);
        per_partition.entry(p).or_default().push(i);
    }
    for (p, order) in per_partition {
        assert_eq!(order, (0..10).collect::<Vec<_>>(), "partition {p} in order");
    }
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "fence");
    let first = txn_producer(&bootstrap, "tx-fence", 30_000);
    first.begin_transaction().expect("begin");
    send_all(&first, "fence", "zombie", 5);
    // The newcomer's init aborts the first producer's open transaction and fences it.
    let second = txn_producer(&bootstrap, "tx-fence", 30_000);
    let zombie_commit = first.commit_transaction(OP_TIMEOUT);
    assert!(
        zombie_commit.is_err(),
        "the fenced producer must not commit: {zombie_commit:?}"
    );
    second.begin_transaction().expect("begin");
    send_all(&second, "fence", "fresh", 5);
    second.commit_transaction(OP_TIMEOUT).expect("commit");

    let reader = consumer(&bootstrap, "read_committed");
    assign_from_start(&reader, "fence");
    let seen = read_until(&reader, OP_TIMEOUT, |v| count_tag(v, "fresh") >= 20);
    let seen = [seen, read_for(&reader, Duration::from_secs(1))].concat();
    assert_eq!(count_tag(&seen, "fresh"), 20);
    assert_eq!(
        count_tag(&seen, "zombie"),
        0,
        "the fenced transaction was aborted"
    );
}

#[test]
fn an_open_transaction_holds_back_read_committed_readers_until_it_ends() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "held");
    let plain: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("plain producer");
    let send_plain = |value: &str| {
        plain
            .send(BaseRecord::<(), _>::to("held").partition(0).payload(value))
            .expect("enqueue");
        plain.flush(OP_TIMEOUT).expect("flush");
    };
    send_plain("before-0-0");
    let txn = txn_producer(&bootstrap, "tx-held", 30_000);
    txn.begin_transaction().expect("begin");
    txn.send(
        BaseRecord::<(), _>::to("held")
            .partition(0)
            .payload("txn-0-0"),
    )
    .expect("enqueue");
    txn.flush(OP_TIMEOUT).expect("flush");
    send_plain("after-0-0");

    let committed = consumer(&bootstrap, "read_committed");
    assign_from_start(&committed, "held");
    let uncommitted = consumer(&bootstrap, "read_uncommitted");
    assign_from_start(&uncommitted, "held");
    let held = read_for(&committed, Duration::from_secs(3));
    assert_eq!(held, vec!["before-0-0".to_string()], "stopped at the LSO");
    let all = read_until(&uncommitted, OP_TIMEOUT, |v| v.len() >= 3);
    assert_eq!(all.len(), 3, "read_uncommitted is not held back: {all:?}");

    txn.commit_transaction(OP_TIMEOUT).expect("commit");
    let rest = read_until(&committed, OP_TIMEOUT, |v| v.len() >= 2);
    assert_eq!(rest, vec!["txn-0-0".to_string(), "after-0-0".to_string()]);
}

#[test]
fn offsets_sent_to_a_transaction_count_only_when_it_commits() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "ctp");
    let producer = txn_producer(&bootstrap, "tx-ctp", 30_000);
    // Pick a group coordinated by the other shard than the transaction, so the marker that
    // makes its offsets visible crosses the mailbox.
    assert_eq!(committed_offset(&bootstrap, "probe"), None); // creates __consumer_offsets
    let txn_shard = leader_of(&bootstrap, "__transaction_state", "tx-ctp");
    let group = (0..100)
        .map(|i| format!("ctp-group-{i}"))
        .find(|g| leader_of(&bootstrap, "__consumer_offsets", g) != txn_shard)
        .expect("some group lands on the other shard");
    let group = group.as_str();
    let group_consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group consumer");
    let offsets_at = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("ctp", 0, Offset::Offset(offset))
            .expect("add");
        tpl
    };
    let metadata = group_consumer
        .group_metadata()
        .expect("consumer group metadata");

    producer.begin_transaction().expect("begin");
    send_all(&producer, "ctp", "out", 1);
    producer
        .send_offsets_to_transaction(&offsets_at(7), &metadata, OP_TIMEOUT)
        .expect("send offsets");
    producer.abort_transaction(OP_TIMEOUT).expect("abort");
    assert_eq!(
        committed_offset(&bootstrap, group),
        None,
        "abort leaves offsets unchanged"
    );

    producer.begin_transaction().expect("begin");
    send_all(&producer, "ctp", "out", 1);
    producer
        .send_offsets_to_transaction(&offsets_at(11), &metadata, OP_TIMEOUT)
        .expect("send offsets");
    producer.commit_transaction(OP_TIMEOUT).expect("commit");
    assert_eq!(committed_offset(&bootstrap, group), Some(11));

    // The committed offset survives a restart (replayed with its marker).
    let mut broker = broker;
    broker.restart_killed();
    assert_eq!(committed_offset(&broker.bootstrap(), group), Some(11));
}

/// The broker (shard) leading the internal-topic partition that `key` hashes to.
fn leader_of(bootstrap: &str, internal_topic: &str, key: &str) -> i32 {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("metadata client");
    let metadata = client
        .fetch_metadata(Some(internal_topic), OP_TIMEOUT)
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions();
    let count = i32::try_from(partitions.len()).expect("partition count fits i32");
    assert!(count > 0, "{internal_topic} exists");
    let p = sluice::coordinator::group::records::partition_for_group(key, count);
    partitions
        .iter()
        .find(|m| m.id() == p)
        .expect("partition listed")
        .leader()
}

fn committed_offset(bootstrap: &str, group: &str) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("ctp", 0);
    let committed = consumer
        .committed_offsets(tpl, OP_TIMEOUT)
        .expect("committed offsets");
    match committed.find_partition("ctp", 0).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

/// A transaction open across a restart ends whole: committed by its producer after the
/// restart, or aborted by the timeout; never half-visible. Later transactions flow.
fn restart_mid_transaction(kill: bool) {
    let mut broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "crash");
    let open = txn_producer(&bootstrap, "tx-open", 5_000);
    open.begin_transaction().expect("begin");
    send_all(&open, "crash", "open", 10);
    if kill {
        broker.restart_killed();
    } else {
        broker.restart_graceful();
    }
    let outcome = open.commit_transaction(OP_TIMEOUT);
    let later = txn_producer(&bootstrap, "tx-later", 30_000);
    later.begin_transaction().expect("begin");
    send_all(&later, "crash", "later", 5);
    later.commit_transaction(OP_TIMEOUT).expect("later commit");

    let reader = consumer(&bootstrap, "read_committed");
    assign_from_start(&reader, "crash");
    let seen = read_until(&reader, OP_TIMEOUT, |v| count_tag(v, "later") >= 20);
    let seen = [seen, read_for(&reader, Duration::from_secs(1))].concat();
    assert_eq!(
        count_tag(&seen, "later"),
        20,
        "later transactions become visible"
    );
    let open_seen = count_tag(&seen, "open");
    match outcome {
        Ok(()) => assert_eq!(open_seen, 40, "a commit that succeeded is whole"),
        Err(e) => assert_eq!(open_seen, 0, "a failed commit ({e}) shows nothing"),
    }
}

#[test]
fn sigterm_mid_transaction_is_never_half_visible() {
    restart_mid_transaction(false);
}

#[test]
fn kill_9_mid_transaction_is_never_half_visible() {
    restart_mid_transaction(true);
}

#[test]
fn committed_transactions_survive_kill_9() {
    let mut broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "durable");
    let producer = txn_producer(&bootstrap, "tx-durable", 30_000);
    producer.begin_transaction().expect("begin");
    send_all(&producer, "durable", "kept", 10);
    producer.commit_transaction(OP_TIMEOUT).expect("commit");
    producer.begin_transaction().expect("begin");
    send_all(&producer, "durable", "dropped", 10);
    producer.abort_transaction(OP_TIMEOUT).expect("abort");
    broker.restart_killed();
    let reader = consumer(&broker.bootstrap(), "read_committed");
    assign_from_start(&reader, "durable");
    let seen = read_until(&reader, OP_TIMEOUT, |v| count_tag(v, "kept") >= 40);
    let seen = [seen, read_for(&reader, Duration::from_secs(1))].concat();
    assert_eq!(count_tag(&seen, "kept"), 40);
    assert_eq!(
        count_tag(&seen, "dropped"),
        0,
        "aborted index rebuilt at start-up"
    );
}

#[test]
fn a_forgotten_transaction_is_aborted_by_its_timeout() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "forgotten");
    // Long enough that the set-up below and the first read window end well before it.
    let forgotten = txn_producer(&bootstrap, "tx-forgotten", 5_000);
    forgotten.begin_transaction().expect("begin");
    send_all(&forgotten, "forgotten", "stale", 5);
    let later = txn_producer(&bootstrap, "tx-after-timeout", 30_000);
    later.begin_transaction().expect("begin");
    send_all(&later, "forgotten", "fresh", 5);
    later.commit_transaction(OP_TIMEOUT).expect("commit");

    let reader = consumer(&bootstrap, "read_committed");
    assign_from_start(&reader, "forgotten");
    // Held back behind the open transaction until the coordinator aborts it (5 s).
    let early = read_for(&reader, Duration::from_millis(1_000));
    assert_eq!(
        count_tag(&early, "fresh"),
        0,
        "held back by the open transaction"
    );
    let seen = read_until(&reader, OP_TIMEOUT, |v| count_tag(v, "fresh") >= 20);
    let seen = [early, seen, read_for(&reader, Duration::from_secs(1))].concat();
    assert_eq!(
        count_tag(&seen, "fresh"),
        20,
        "visible once the timeout aborted the other"
    );
    assert_eq!(
        count_tag(&seen, "stale"),
        0,
        "the timed-out transaction was aborted"
    );
    // The timed-out producer was fenced by the abort's epoch bump.
    assert!(forgotten.commit_transaction(OP_TIMEOUT).is_err());
}
