//! A cluster of three Sluice processes on 127.0.0.1-3 (one shard each), configured exactly as
//! the README's cluster section says, for the multi-node tests: start, SIGKILL and restart
//! nodes, wait for conditions with the nodes' logs in the failure message, and look at the
//! cluster through Metadata, DescribeQuorum and an unmodified librdkafka admin client.
//! Include with `#[path = "common/cluster.rs"] mod cluster;` beside `mod rdk;`.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use sluice::client::Client;

use crate::rdk;

/// How long the cluster may take to form, as the issue promises.
pub const FORM_WITHIN: Duration = Duration::from_secs(30);

/// One node's process and files.
pub struct Node {
    pub id: u8,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn bootstrap(&self, port: u16) -> String {
        format!("127.0.0.{}:{port}", self.id)
    }

    pub fn start(&mut self) {
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

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// The process id while the node runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
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
pub struct Cluster {
    port: u16,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(port: u16, controller: u16, extra: &[&str]) -> Cluster {
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

    pub fn node(&mut self, id: u8) -> &mut Node {
        &mut self.nodes[usize::from(id) - 1]
    }

    /// What node `id` has logged since its last start.
    pub fn node_log(&self, id: u8) -> String {
        self.nodes[usize::from(id) - 1].log_text()
    }

    /// The node's data directory (`log.dirs`).
    pub fn data_dir(&self, id: u8) -> PathBuf {
        self._dir.path().join(format!("data{id}"))
    }

    pub fn bootstrap(&self, id: u8) -> String {
        self.nodes[usize::from(id) - 1].bootstrap(self.port)
    }

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, n.log_text()))
            .collect()
    }

    /// Waits until `check` holds, or fails with the nodes' logs.
    pub fn wait_for(
        &self,
        within: Duration,
        what: &str,
        mut check: impl FnMut() -> bool,
    ) -> Duration {
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
pub fn node_config(
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
         broker.rack=rack-{n}\n\
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
pub fn brokers(bootstrap: &str) -> Vec<i32> {
    Client::connect(bootstrap, None)
        .map(|c| c.metadata().brokers.keys().copied().collect())
        .unwrap_or_default()
}

/// Topic names Metadata from `bootstrap` lists now.
pub fn topics(bootstrap: &str) -> Vec<String> {
    let Ok(mut client) = Client::connect(bootstrap, None) else {
        return Vec::new();
    };
    client
        .refresh(None)
        .map(|m| m.topics.keys().cloned().collect())
        .unwrap_or_default()
}

/// The quorum leader `bootstrap` reports, if any.
pub fn quorum_leader(bootstrap: &str) -> Option<i32> {
    let mut client = Client::connect(bootstrap, None).ok()?;
    let state = client.describe_quorum().ok()?;
    (state.leader >= 0).then_some(state.leader)
}

/// Creates `topic` through `bootstrap` with an unmodified librdkafka admin client.
pub fn create_topic(
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

pub fn records(n: usize, tag: &str) -> Vec<rdk::Rec> {
    (0..n)
        .map(|i| rdk::Rec {
            key: Some(format!("{tag}-{i}").into_bytes()),
            value: Some(format!("value-{i}").into_bytes()),
            headers: Vec::new(),
        })
        .collect()
}

/// (leader, ISR) of `topic`/`partition` as Metadata from `bootstrap` reports them; `None`
/// when the node does not answer.
pub fn leader_and_isr(bootstrap: &str, topic: &str, partition: i32) -> Option<(i32, Vec<i32>)> {
    use rdkafka::consumer::Consumer;
    let md = rdk::consumer(bootstrap)
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let p = t.partitions().iter().find(|p| p.id() == partition)?;
    let mut isr = p.isr().to_vec();
    isr.sort_unstable();
    Some((p.leader(), isr))
}

/// Whether every partition of `topic` has `expected` (sorted) as its ISR, per Metadata from
/// `bootstrap`.
pub fn every_isr_is(bootstrap: &str, topic: &str, expected: &[i32]) -> bool {
    use rdkafka::consumer::Consumer;
    let Ok(md) = rdk::consumer(bootstrap).fetch_metadata(Some(topic), Duration::from_secs(5))
    else {
        return false;
    };
    md.topics().iter().filter(|t| t.name() == topic).all(|t| {
        !t.partitions().is_empty()
            && t.partitions().iter().all(|p| {
                let mut isr = p.isr().to_vec();
                isr.sort_unstable();
                isr == expected
            })
    })
}
