//! A real Sluice broker for the consumer-group and transaction integration tests: the `sluice` binary in a
//! child process with its own temporary data directory and free ports, restartable with
//! SIGTERM or `kill -9` while keeping its data; its log is printed when a test fails.
//! (`tests/common/` is the older harness of the storage and wire tests; merging the two is
//! open work.)

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Cores (shards) the test broker runs: two, so groups and transactions span shards.
pub const CORES: u16 = 2;

/// Broker settings for fast tests: quick first rebalance, small internal topics, and a short
/// maximum transaction timeout.
const TEST_CONFIG: &str = "group.initial.rebalance.delay.ms=100\noffsets.topic.num.partitions=10\ntransaction.state.log.num.partitions=10\ntransaction.max.timeout.ms=60000\n";

pub struct Broker {
    child: Option<Child>,
    /// Bootstrap port; shard c listens on port + 1 + c.
    pub port: u16,
    data_dir: tempfile::TempDir,
    config: PathBuf,
}

/// The broker binary. `SLUICE_BIN` overrides it for runs where the shared target directory
/// may hold another worktree's build.
fn binary() -> PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")))
}

/// A bootstrap port whose shard ports are free too.
fn free_ports() -> u16 {
    for _ in 0..100 {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = probe.local_addr().expect("local addr").port();
        drop(probe);
        let all_free = (0..=CORES).all(|i| {
            port.checked_add(i)
                .is_some_and(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if all_free {
            return port;
        }
    }
    panic!("no run of {} free ports found", CORES + 1);
}

impl Broker {
    pub fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let config = data_dir.path().join("test.properties");
        let mut file = std::fs::File::create(&config).expect("config file");
        file.write_all(TEST_CONFIG.as_bytes())
            .expect("write config");
        let mut broker = Self {
            child: None,
            port: free_ports(),
            data_dir,
            config,
        };
        broker.spawn();
        broker
    }

    /// The broker's stderr goes to a file that a failing test prints (see `Drop`).
    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("broker.log"))
            .expect("broker log file")
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let data = self.data_dir.path().join("data");
        let child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--cores")
            .arg(CORES.to_string())
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .expect("start the sluice binary");
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for i in 0..=CORES {
            let addr = ("127.0.0.1", self.port + i);
            while TcpStream::connect(addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "broker did not listen on {addr:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Graceful restart: SIGTERM, wait for exit, start again on the same data.
    pub fn restart_graceful(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id()).expect("pid fits i32");
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let status = child.wait().expect("wait for broker");
            assert!(status.success(), "broker exited with {status} on SIGTERM");
        }
        self.spawn();
    }

    /// Crash restart: SIGKILL, then start again on the same data.
    pub fn restart_killed(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 the broker");
            let _ = child.wait();
        }
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.data_dir.path().join("broker.log"))
                .unwrap_or_default();
            eprintln!("---- broker log ----\n{log}---- end of broker log ----");
        }
    }
}

/// Creates a topic with `partitions` partitions through librdkafka's admin API.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results =
        futures_lite::future::block_on(admin.create_topics(&[topic], &AdminOptions::new()))
            .expect("create_topics request");
    for result in results {
        result.expect("topic created");
    }
}
