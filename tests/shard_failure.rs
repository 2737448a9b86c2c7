//! A shard must never die quietly. Logging into a stderr that cannot be written (a closed
//! pipe, a full disk) once panicked inside a log call and killed shard 0's executor while the
//! process stayed up: its ports accepted TCP and never answered. These tests start the real
//! binary with such a stderr and drive traffic that logs on every shard, and check that a shard
//! that does die takes the whole process down with a non-zero exit naming it.

mod common;

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice::client::Client;
use sluice::client::admin::NewTopic;
use sluice::client::produce::ProducerRecord;
use sluice::protocol::record_batch::Compression;

const CORES: u16 = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A broker process started by hand (the shared harness always logs to a file).
struct Node {
    child: Child,
    base_port: u16,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(stderr: Stdio, env: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let base_port = common::free_port_range(CORES + 1);
        let mut cmd = Command::new(common::sluice_bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--host", "127.0.0.1", "--metrics-addr", "off"])
            .args(["--port", &base_port.to_string()])
            .args(["--cores", &CORES.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .envs(env.iter().copied());
        let child = cmd.spawn().expect("spawn sluice");
        let mut node = Node {
            child,
            base_port,
            _dir: dir,
        };
        node.wait_ready();
        node
    }

    fn ports(&self) -> Vec<u16> {
        (0..=CORES).map(|i| self.base_port + i).collect()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        for port in self.ports() {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("broker exited during start-up with {status}");
                }
                assert!(Instant::now() < deadline, "port {port} never accepted");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Every port answers a real client's ApiVersions, and the process is alive.
    fn assert_serving(&mut self, when: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{when}: broker exited with {status}");
        }
        for port in self.ports() {
            let addr = format!("127.0.0.1:{port}");
            if let Err(e) = sluice::client::Connection::connect(&addr, None) {
                panic!("{when}: port {port} does not answer: {e}");
            }
        }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        common::wait_timeout(&mut self.child, EXIT_TIMEOUT).expect("broker exits on SIGTERM")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pipe whose read end is already closed: every write gives EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: both descriptors are fresh and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

fn dev_full() -> Stdio {
    Stdio::from(
        File::options()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full"),
    )
}

/// Creates and deletes a topic spread over both shards and waits until every shard has
/// removed its partitions from disk: each step logs on the shards that own them.
fn traffic_that_logs(node: &Node, round: usize) {
    let mut client =
        Client::connect(&format!("127.0.0.1:{}", node.base_port), None).expect("connect a client");
    let topic = format!("logged-{round}");
    let created = client
        .create_topics(&[NewTopic {
            name: topic.clone(),
            partitions: 4,
            replication_factor: 1,
            configs: Vec::new(),
        }])
        .expect("create topic");
    assert!(created.iter().all(|(_, r)| r.is_ok()), "{created:?}");
    // Partitions are opened on first use: one record each makes every shard open its logs.
    client
        .refresh(Some(std::slice::from_ref(&topic)))
        .expect("metadata");
    let record = ProducerRecord {
        key: None,
        value: Some(b"logged".to_vec()),
        headers: Vec::new(),
        timestamp_ms: 0,
    };
    for partition in 0..4 {
        client
            .produce(
                &topic,
                partition,
                std::slice::from_ref(&record),
                1,
                Compression::None,
            )
            .expect("produce");
    }
    let dirs = |node: &Node| {
        std::fs::read_dir(node.data_dir())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&topic))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_for(|| dirs(node) == 4, "partition directories created");
    let deleted = client
        .delete_topics(std::slice::from_ref(&topic))
        .expect("delete topic");
    assert!(deleted.iter().all(|(_, r)| r.is_ok()), "{deleted:?}");
    wait_for(|| dirs(node) == 0, "partition directories removed");
}

fn wait_for(mut check: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Defect: with stderr a closed pipe (EPIPE) or `/dev/full` (ENOSPC) a log line panicked:
/// during start-up that killed the process; after start-up it killed the executor of the shard
/// that logged while the process stayed up. Logging now drops what it cannot write.
#[test]
fn an_unwritable_stderr_does_not_stop_any_shard() {
    let modes = [
        ("closed pipe", closed_pipe()),
        ("/dev/full", dev_full()),
        ("pipe closed after start-up", Stdio::piped()),
    ];
    for (what, stderr) in modes {
        let mut node = Node::start(stderr, &[]);
        // The third mode: start-up logged fine; from here on every write fails (EPIPE), as
        // when the process that read the broker's log goes away.
        drop(node.child.stderr.take());
        node.assert_serving(&format!("{what}, after start-up"));
        for round in 0..2 {
            traffic_that_logs(&node, round);
            node.assert_serving(&format!("{what}, after topic round {round}"));
        }
        let status = node.stop();
        assert!(status.success(), "{what}: SIGTERM exit {status}");
    }
}

/// Defect: a shard whose executor died left the process up with dead ports, and SIGTERM then
/// blamed "a shard" during shutdown. Now the node stops at once, exits non-zero and names the
/// shard. `SLUICE_TEST_PANIC_SHARD` is a debug-build-only hook that makes a shard panic.
#[test]
fn a_dead_shard_stops_the_node_and_is_named() {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let stderr = Stdio::from(log.reopen().expect("reopen log"));
    let mut node = Node::start(stderr, &[("SLUICE_TEST_PANIC_SHARD", "1")]);
    let status = common::wait_timeout(&mut node.child, EXIT_TIMEOUT)
        .expect("the node kept running with a dead shard");
    let text = std::fs::read_to_string(log.path()).expect("read log");
    assert_eq!(status.code(), Some(1), "exit status {status}; log:\n{text}");
    assert!(
        text.contains("sluice: shard 1 panicked while the node was running"),
        "the exit message must name the shard; log:\n{text}"
    );
    assert!(
        text.contains("shard stopped core=0"),
        "shard 0 was stopped cleanly:\n{text}"
    );
}
