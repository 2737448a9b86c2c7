//! Three Sluice processes on 127.0.0.1-3 (one shard each), configured exactly as the README's
//! cluster section says, under a Raft controller quorum: the cluster forms, topics created
//! through any node appear on every node and carry data between nodes for unmodified
//! librdkafka clients, a SIGKILLed controller leader is replaced (the election time is
//! printed), a silent node is fenced out of Metadata, a restarted node rejoins from its own
//! log, and a node whose log is stale catches up from a snapshot.
//!
//! Ports are fixed below 20000, outside the range the single-broker tests pick from at random,
//! so the tests running beside these never take one of them.

#[path = "common/rdk.rs"]
mod rdk;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use sluice::client::Client;

/// How long the cluster may take to form, as the issue promises.
const FORM_WITHIN: Duration = Duration::from_secs(30);

/// One node's process and files.
struct Node {
    id: u8,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn bootstrap(&self, port: u16) -> String {
        format!("127.0.0.{}:{port}", self.id)
    }

    fn start(&mut self) {
        let log = File::create(&self.log).expect("node log");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--cores", "1", "--metrics-addr", "off", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sluice");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A 3-node cluster on 127.0.0.1-3 with bootstrap port `port` and controller port
/// `controller` on every node; `extra` lines are added to every node's file.
struct Cluster {
    port: u16,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(port: u16, controller: u16, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let voters = (1..=3)
            .map(|n| format!("{n}@127.0.0.{n}:{controller}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (1..=3u8)
            .map(|n| {
                let config = dir.path().join(format!("node{n}.properties"));
                let text = node_config(n, port, controller, &voters, dir.path(), extra);
                std::fs::write(&config, text).expect("write config");
                Node {
                    id: n,
                    config,
                    log: dir.path().join(format!("node{n}.log")),
                    child: None,
                }
            })
            .collect();
        let mut cluster = Cluster {
            port,
            nodes,
            _dir: dir,
        };
        for node in &mut cluster.nodes {
            node.start();
        }
        cluster
    }

    fn node(&mut self, id: u8) -> &mut Node {
        &mut self.nodes[usize::from(id) - 1]
    }

    fn bootstrap(&self, id: u8) -> String {
        self.nodes[usize::from(id) - 1].bootstrap(self.port)
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, n.log_text()))
            .collect()
    }

    /// Waits until `check` holds, or fails with the nodes' logs.
    fn wait_for(&self, within: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        while start.elapsed() < within {
            if check() {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{what} did not happen within {within:?}\n{}", self.logs());
    }
}

/// The node file of the README's cluster section.
fn node_config(
    n: u8,
    port: u16,
    controller: u16,
    voters: &str,
    dir: &Path,
    extra: &[&str],
) -> String {
    let mut text = format!(
        "node.id={n}\n\
         process.roles=broker,controller\n\
         controller.quorum.voters={voters}\n\
         listeners=PLAINTEXT://127.0.0.{n}:{port},CONTROLLER://127.0.0.{n}:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.{n}:{port}\n\
         controller.listener.names=CONTROLLER\n\
         log.dirs={}\n\
         default.replication.factor=3\n\
         min.insync.replicas=2\n\
         offsets.topic.replication.factor=3\n\
         transaction.state.log.replication.factor=3\n\
         transaction.state.log.min.isr=2\n",
        dir.join(format!("data{n}")).display()
    );
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Broker ids Metadata from `bootstrap` lists now; empty if the node does not answer.
fn brokers(bootstrap: &str) -> Vec<i32> {
    Client::connect(bootstrap, None)
        .map(|c| c.metadata().brokers.keys().copied().collect())
        .unwrap_or_default()
}

/// Topic names Metadata from `bootstrap` lists now.
fn topics(bootstrap: &str) -> Vec<String> {
    let Ok(mut client) = Client::connect(bootstrap, None) else {
        return Vec::new();
    };
    client
        .refresh(None)
        .map(|m| m.topics.keys().cloned().collect())
        .unwrap_or_default()
}

/// The quorum leader `bootstrap` reports, if any.
fn quorum_leader(bootstrap: &str) -> Option<i32> {
    let mut client = Client::connect(bootstrap, None).ok()?;
    let state = client.describe_quorum().ok()?;
    (state.leader >= 0).then_some(state.leader)
}

/// Creates `topic` through `bootstrap` with an unmodified librdkafka admin client.
fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replicas: i32,
) -> Result<(), String> {
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas));
    let results = futures_lite::future::block_on(
        rdk::admin(bootstrap).create_topics([&new_topic], &rdk::admin_options()),
    )
    .map_err(|e| e.to_string())?;
    for result in results {
        result.map_err(|(name, code)| format!("{name}: {code:?}"))?;
    }
    Ok(())
}

fn records(n: usize, tag: &str) -> Vec<rdk::Rec> {
    (0..n)
        .map(|i| rdk::Rec {
            key: Some(format!("{tag}-{i}").into_bytes()),
            value: Some(format!("value-{i}").into_bytes()),
            headers: Vec::new(),
        })
        .collect()
}

#[test]
fn three_nodes_form_share_topics_and_replace_a_killed_controller_leader() {
    let mut cluster = Cluster::start(
        18092,
        18192,
        &[
            "broker.heartbeat.interval.ms=500",
            "broker.session.timeout.ms=3000",
        ],
    );
    let formed = cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == vec![1000, 2000, 3000])
    });
    println!("cluster formed: every node lists every shard after {formed:?}");

    // A topic created through node 2 appears on every node, with replicas on all three.
    create_topic(&cluster.bootstrap(2), "orders", 6, 3).expect("create through node 2");
    cluster.wait_for(Duration::from_secs(10), "orders on every node", || {
        (1..=3).all(|n| topics(&cluster.bootstrap(n)).contains(&"orders".to_string()))
    });
    let leaders = rdk::leaders(&cluster.bootstrap(3), "orders");
    let leader_nodes: std::collections::BTreeSet<i32> =
        leaders.values().map(|b| b / 1000).collect();
    assert_eq!(
        leader_nodes.len(),
        3,
        "leaders spread over the nodes: {leaders:?}"
    );

    // Data written through node 1 to every partition reads back through node 3.
    let producer = rdk::producer(&cluster.bootstrap(1), "none", "all");
    for p in 0..6 {
        let sent = records(50, &format!("p{p}"));
        rdk::send_all(&producer, "orders", p, &sent);
        let read = rdk::read_partition(&cluster.bootstrap(3), "orders", p, sent.len());
        rdk::assert_same_records(&sent, &read, &format!("orders/{p}"));
    }

    // SIGKILL the controller leader: another is elected and topics can still be created.
    let old = quorum_leader(&cluster.bootstrap(1)).expect("a quorum leader");
    let survivor = if old == 1 { 2 } else { 1 };
    cluster.node(old as u8).kill9();
    let killed_at = Instant::now();
    let elected = cluster.wait_for(Duration::from_secs(20), "a new quorum leader", || {
        quorum_leader(&cluster.bootstrap(survivor)).is_some_and(|l| l != old)
    });
    println!("controller leader {old} SIGKILLed: new leader elected after {elected:?}");
    cluster.wait_for(
        Duration::from_secs(20),
        "a topic created after the kill",
        || create_topic(&cluster.bootstrap(survivor), "after-kill", 2, 2).is_ok(),
    );
    println!(
        "topic creation works again {:?} after the kill",
        killed_at.elapsed()
    );

    // The silent node is fenced: Metadata stops listing its shard.
    let gone = old * 1000;
    cluster.wait_for(Duration::from_secs(15), "the killed node fenced", || {
        !brokers(&cluster.bootstrap(survivor)).contains(&gone)
    });

    // Restarted, it rejoins from its own log and data and serves its partitions again.
    cluster.node(old as u8).start();
    cluster.wait_for(FORM_WITHIN, "the restarted node listed again", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == vec![1000, 2000, 3000])
    });
    assert!(topics(&cluster.bootstrap(old as u8)).contains(&"after-kill".to_string()));
    for (p, leader) in rdk::leaders(&cluster.bootstrap(old as u8), "orders") {
        if leader / 1000 == old {
            let read = rdk::read_partition(&cluster.bootstrap(old as u8), "orders", p, 50);
            assert_eq!(read.len(), 50, "orders/{p} after the restart");
        }
    }
}

#[test]
fn a_node_with_a_stale_log_catches_up_from_a_snapshot() {
    // Snapshot every ~10 records and keep only 10 below it, so a node that misses 30 topic
    // creations can only catch up through a snapshot.
    let mut cluster = Cluster::start(
        18292,
        18392,
        &["metadata.log.max.record.bytes.between.snapshots=2560"],
    );
    cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == vec![1000, 2000, 3000])
    });
    let leader = quorum_leader(&cluster.bootstrap(1)).expect("a quorum leader");
    let stale = if leader == 3 { 2 } else { 3 };
    cluster.node(stale).kill9();
    for i in 0..30 {
        create_topic(&cluster.bootstrap(leader as u8), &format!("t{i}"), 1, 2)
            .expect("create while a node is down");
    }
    cluster.node(stale).start();
    let caught_up = cluster.wait_for(FORM_WITHIN, "the stale node seeing all topics", || {
        let seen = topics(&cluster.bootstrap(stale));
        (0..30).all(|i| seen.contains(&format!("t{i}")))
    });
    println!("stale node {stale} caught up after {caught_up:?}");
    let log = cluster.node(stale).log_text();
    assert!(
        log.contains("metadata snapshot installed from the leader"),
        "the stale node caught up through a snapshot\n{log}"
    );
}
