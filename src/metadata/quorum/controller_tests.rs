//! Three controllers in one process on 127.0.0.1/.2/.3, each on its own `sluice-controller`
//! thread over a temp directory, replicating the real [`ClusterImage`]: election, forwarded
//! writes, leader failover, restart from disk, catch-up through InstallSnapshot, and a bounded
//! write on an isolated leader. Every wait has a deadline; the tests run one at a time (they
//! each start three Rafts, and the machine may have two cores).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use uuid::Uuid;

use super::{
    Controller, ControllerError, ControllerHandle, ControllerNode, ControllerSettings, FaultPlan,
};
use crate::metadata::command::{Applied, MetaCommand, MetaReply, PartitionAssignment};
use crate::metadata::image::ClusterImage;

type Handle = ControllerHandle<ClusterImage>;

/// One three-node test at a time: each starts three Rafts with real timers.
static SERIAL: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(15);

fn endpoint(id: u64, port: u16) -> ControllerNode {
    ControllerNode {
        host: format!("127.0.0.{id}"),
        port,
    }
}

fn settings(faults: &FaultPlan) -> ControllerSettings {
    ControllerSettings {
        heartbeat: Duration::from_millis(200),
        election_timeout: Duration::from_millis(1000),
        request_timeout: Duration::from_millis(1000),
        write_timeout: Duration::from_secs(10),
        faults: faults.clone(),
        ..ControllerSettings::default()
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Polls `ok` until it holds, failing the test after [`WAIT`].
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Cluster {
    port: u16,
    settings: ControllerSettings,
    dirs: BTreeMap<u64, TempDir>,
    nodes: BTreeMap<u64, Handle>,
}

impl Cluster {
    fn start(port: u16, settings: ControllerSettings) -> Self {
        let mut cluster = Self {
            port,
            settings,
            dirs: (1..=3)
                .map(|id| (id, tempfile::tempdir().expect("tempdir")))
                .collect(),
            nodes: BTreeMap::new(),
        };
        for id in 1..=3 {
            cluster.restart(id);
        }
        cluster
    }

    fn voters(&self) -> BTreeMap<u64, ControllerNode> {
        (1..=3).map(|id| (id, endpoint(id, self.port))).collect()
    }

    fn restart(&mut self, id: u64) {
        let dir: &Path = self.dirs[&id].path();
        let handle = Controller::start(
            id,
            endpoint(id, self.port),
            self.voters(),
            dir,
            self.settings.clone(),
        )
        .expect("controller starts");
        self.nodes.insert(id, handle);
    }

    fn stop(&mut self, id: u64) {
        if let Some(h) = self.nodes.remove(&id) {
            h.shutdown();
        }
    }

    /// The leader every running node agrees on, once there is one.
    fn leader(&self) -> u64 {
        let mut leader = 0;
        wait_until("a leader all running nodes know", || {
            let seen: Vec<Option<u64>> = self.nodes.values().map(|h| h.metrics().leader).collect();
            match seen[0] {
                Some(l) if self.nodes.contains_key(&l) && seen.iter().all(|s| *s == Some(l)) => {
                    leader = l;
                    true
                }
                _ => false,
            }
        });
        leader
    }

    fn follower(&self, leader: u64) -> &Handle {
        self.nodes
            .iter()
            .find(|(id, _)| **id != leader)
            .map(|(_, h)| h)
            .expect("a follower")
    }

    /// Waits until every running node has applied the same image and returns it.
    fn converged(&self) -> ClusterImage {
        wait_until("all images equal", || {
            let images: Vec<_> = self.nodes.values().map(Handle::image).collect();
            images.windows(2).all(|w| w[0] == w[1])
        });
        let first = self.nodes.values().next().expect("a node");
        (*first.image()).clone()
    }

    fn shutdown(self) {
        for h in self.nodes.values() {
            h.shutdown();
        }
    }
}

fn write(handle: &Handle, cmd: MetaCommand) -> MetaReply {
    block_on(handle.write(cmd)).expect("write commits").reply
}

fn create_topic(name: &str) -> MetaCommand {
    MetaCommand::CreateTopic {
        name: name.to_owned(),
        topic_id: Uuid::new_v4(),
        partitions: vec![PartitionAssignment {
            replicas: vec![1000, 2000, 3000],
        }],
        configs: BTreeMap::new(),
    }
}

/// Registers and unfences nodes 1-3 through `handle`.
fn register_all(handle: &Handle) {
    for node_id in 1..=3 {
        let reply = write(
            handle,
            MetaCommand::RegisterBroker {
                node_id,
                incarnation: Uuid::new_v4(),
                endpoints: BTreeMap::from([(
                    "PLAINTEXT".to_owned(),
                    format!("127.0.0.{node_id}:9092"),
                )]),
                shards: 1,
                rack: None,
            },
        );
        let MetaReply::Ok(Applied::BrokerRegistered { broker_epoch }) = reply else {
            panic!("registration refused: {reply:?}");
        };
        let reply = write(
            handle,
            MetaCommand::UnfenceBroker {
                node_id,
                broker_epoch,
            },
        );
        assert_eq!(reply.code(), 0, "{reply:?}");
    }
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn three_controllers_elect_and_replicate_forwarded_writes() {
    let _serial = serial();
    let cluster = Cluster::start(21093, settings(&FaultPlan::default()));
    let leader = cluster.leader();
    let follower = cluster.follower(leader);
    register_all(follower);
    assert_eq!(write(follower, create_topic("orders")).code(), 0);
    let image = cluster.converged();
    assert!(image.topic("orders").is_some());
    assert_eq!(image.live_brokers().count(), 3);
    let m = cluster.nodes[&leader].metrics();
    assert_eq!(m.matched.len(), 3, "the leader tracks every voter: {m:?}");
    cluster.shutdown();
}

#[test]
fn a_new_leader_takes_over_when_the_leader_stops() {
    let _serial = serial();
    let mut cluster = Cluster::start(21193, settings(&FaultPlan::default()));
    let old = cluster.leader();
    register_all(&cluster.nodes[&old]);
    let stopped = Instant::now();
    cluster.stop(old);
    let shut = stopped.elapsed();
    let survivor = cluster.nodes.values().next().expect("a survivor").clone();
    assert_eq!(write(&survivor, create_topic("after-failover")).code(), 0);
    let took = stopped.elapsed();
    println!(
        "failover: leader {old} stopped (shutdown took {shut:?}) -> next write committed in {took:?}"
    );
    assert!(took < Duration::from_secs(10), "failover took {took:?}");
    assert_ne!(cluster.leader(), old);
    assert!(cluster.converged().topic("after-failover").is_some());
    cluster.shutdown();
}

#[test]
fn a_restarted_node_rejoins_and_catches_up() {
    let _serial = serial();
    let mut cluster = Cluster::start(21293, settings(&FaultPlan::default()));
    let old = cluster.leader();
    register_all(&cluster.nodes[&old]);
    cluster.stop(old);
    let survivor = cluster.nodes.values().next().expect("a survivor").clone();
    for i in 0..5 {
        assert_eq!(write(&survivor, create_topic(&format!("t{i}"))).code(), 0);
    }
    cluster.restart(old);
    let image = cluster.converged();
    assert_eq!(image.topics().count(), 5);
    assert_eq!(*cluster.nodes[&old].image(), image);
    cluster.shutdown();
}

#[test]
fn a_stale_node_catches_up_through_a_snapshot() {
    let _serial = serial();
    let settings = ControllerSettings {
        snapshot_logs: 5,
        logs_kept_after_snapshot: 0,
        ..settings(&FaultPlan::default())
    };
    let mut cluster = Cluster::start(21393, settings);
    let leader = cluster.leader();
    register_all(&cluster.nodes[&leader]);
    let stale = cluster.follower(leader).metrics().node_id;
    cluster.stop(stale);
    let stale_last = {
        let leader_handle = &cluster.nodes[&leader];
        for i in 0..30 {
            assert_eq!(
                write(leader_handle, create_topic(&format!("s{i}"))).code(),
                0
            );
        }
        // What the stale node had is what every node had before those writes.
        let m = leader_handle.metrics();
        wait_until("the leader purges its log", || {
            leader_handle.metrics().purged_index > Some(m.last_log_index.unwrap_or(0) - 25)
        });
        m.last_log_index.unwrap_or(0) - 30
    };
    cluster.restart(stale);
    let image = cluster.converged();
    assert_eq!(image.topics().count(), 30);
    let purged = cluster.nodes[&leader].metrics().purged_index.unwrap_or(0);
    assert!(
        purged > stale_last,
        "the leader no longer had the entries after {stale_last} (purged to {purged})"
    );
    cluster.shutdown();
}

#[test]
fn an_isolated_leader_fails_writes_within_the_deadline() {
    let _serial = serial();
    let faults = FaultPlan::default();
    let settings = ControllerSettings {
        write_timeout: Duration::from_secs(3),
        ..settings(&faults)
    };
    let cluster = Cluster::start(21493, settings);
    let leader = cluster.leader();
    register_all(&cluster.nodes[&leader]);
    for other in cluster.nodes.keys().filter(|id| **id != leader) {
        faults.cut(leader, *other);
    }
    let started = Instant::now();
    let out = block_on(cluster.nodes[&leader].write(create_topic("lost")));
    let took = started.elapsed();
    assert!(
        matches!(out, Err(ControllerError::TimedOut(_))),
        "an isolated leader cannot commit: {out:?}"
    );
    assert!(took < Duration::from_secs(6), "gave up after {took:?}");
    // The majority side elects its own leader and keeps committing.
    let majority = cluster.follower(leader);
    assert_eq!(write(majority, create_topic("kept")).code(), 0);
    // The reply comes once the leader applied it; a follower's image may be a beat behind.
    wait_until("the majority node applies the write", || {
        majority.image().topic("kept").is_some()
    });
    assert!(majority.image().topic("lost").is_none());
    faults.heal();
    cluster.shutdown();
}

#[test]
fn the_listener_closes_a_connection_that_sends_a_bad_frame() {
    use std::io::{Read, Write};
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let own = endpoint(1, 21593);
    let handle = Controller::start::<ClusterImage>(
        1,
        own.clone(),
        BTreeMap::from([(1, own)]),
        dir.path(),
        settings(&FaultPlan::default()),
    )
    .expect("controller starts");
    for bad in [
        (super::MAX_FRAME_BYTES + 1).to_be_bytes().to_vec(),
        [&5u32.to_be_bytes()[..], b"nope!"].concat(),
    ] {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", 21593)).expect("connect");
        conn.set_read_timeout(Some(WAIT)).expect("timeout");
        conn.write_all(&bad).expect("send");
        let mut buf = [0u8; 16];
        let n = conn.read(&mut buf).expect("closed, not timed out");
        assert_eq!(n, 0, "the server answers a bad frame by closing");
    }
    // A one-voter quorum still commits after the garbage.
    let alter = MetaCommand::AlterBrokerConfigs {
        set: BTreeMap::from([("log.retention.ms".to_owned(), "1000".to_owned())]),
        delete: std::collections::BTreeSet::new(),
    };
    assert_eq!(write(&handle, alter).code(), 0);
    // A second controller on the same endpoint is refused at start, not left half-running.
    let other = tempfile::tempdir().expect("tempdir");
    let twin = Controller::start::<ClusterImage>(
        1,
        endpoint(1, 21593),
        BTreeMap::from([(1, endpoint(1, 21593))]),
        other.path(),
        settings(&FaultPlan::default()),
    );
    assert!(
        matches!(twin, Err(ControllerError::Bind { .. })),
        "{twin:?}"
    );
    handle.shutdown();
    assert!(matches!(
        block_on(handle.write(create_topic("late"))),
        Err(ControllerError::Stopped)
    ));
}
