//! The one broker harness of the integration tests: start the real `sluice` binary on a
//! temporary data directory and a free range of loopback ports, wait until every listener
//! accepts, stop or restart it gracefully or with SIGKILL, and print its log when a test fails.
//!
//! Every test binary includes this module, and not every binary uses every helper. Suites
//! with their own needs layer on top of it: `broker_common` (group and transaction settings)
//! and `cli_common` (running `sluice` subcommands).
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a broker may take to open all its listeners. Generous because CI machines have two
/// cores and may be compiling in parallel.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a graceful stop may take before the test calls it a hang.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Ports are drawn from this range; it stays below the usual Linux ephemeral range
/// (32768..60999) so that outgoing client connections do not collide with our listeners.
const PORT_RANGE_START: u16 = 20_000;
const PORT_RANGE_LEN: u16 = 12_000;

/// Broker settings a test may choose.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Number of shards (`--cores`); each shard is a separate Kafka broker id and port.
    pub cores: u16,
    /// Lines for a server.properties-style config file, `key=value`. None: no `--config` flag.
    pub config: Option<Vec<(String, String)>>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            cores: 1,
            config: None,
        }
    }
}

impl BrokerOptions {
    pub fn with_cores(mut self, cores: u16) -> Self {
        self.cores = cores;
        self
    }

    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.config
            .get_or_insert_with(Vec::new)
            .push((key.to_string(), value.to_string()));
        self
    }
}

/// A running (or stopped) `sluice serve` process together with its data directory. The data
/// directory outlives restarts; it is removed when the `Broker` is dropped.
pub struct Broker {
    dir: tempfile::TempDir,
    options: BrokerOptions,
    base_port: u16,
    child: Option<Child>,
    /// Number of times the process has been started; each start logs to its own file so a
    /// failure after a restart still shows what happened before it.
    starts: u32,
}

impl Broker {
    /// Starts a broker with default options and waits until it is ready.
    pub fn start() -> Broker {
        Broker::start_with(BrokerOptions::default())
    }

    /// Starts a broker on a fresh temporary data dir and waits until it is ready. Retries on a
    /// new port range when the process dies during start-up, because another test process may
    /// have taken one of the ports between our probe and the broker's bind.
    pub fn start_with(options: BrokerOptions) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("sluice-test-")
            .tempdir()
            .expect("create temp dir");
        let mut broker = Broker {
            dir,
            base_port: 0,
            options,
            child: None,
            starts: 0,
        };
        for attempt in 0..3 {
            broker.base_port = free_port_range(broker.options.cores + 1);
            match broker.spawn_and_wait() {
                Ok(()) => return broker,
                Err(why) if attempt < 2 => {
                    eprintln!("broker start attempt {attempt} failed ({why}); retrying");
                    broker.kill9();
                }
                // Drop prints the logs while the panic unwinds.
                Err(why) => panic!("broker did not become ready: {why}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Path of the data directory (stays the same across restarts).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `host:port` of the bootstrap listener.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.base_port)
    }

    pub fn base_port(&self) -> u16 {
        self.base_port
    }

    /// Port of shard `core`, advertised in Metadata as broker id `core`.
    pub fn shard_port(&self, core: u16) -> u16 {
        self.base_port + 1 + core
    }

    pub fn cores(&self) -> u16 {
        self.options.cores
    }

    /// Process id of the running broker.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    /// Whether the process is still running (it has not exited on its own).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal_and_wait(libc::SIGTERM)
    }

    /// Sends `signal` and waits (bounded) for the process to exit.
    pub fn signal_and_wait(&mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("broker is running");
        send_signal(&child, signal);
        match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("broker did not exit within {STOP_TIMEOUT:?} after signal {signal}");
            }
        }
    }

    /// SIGKILL: no chance to flush or clean up, as in a power cut of the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Graceful restart: SIGTERM, a clean exit, then start again on the same data.
    pub fn restart_graceful(&mut self) {
        let status = self.stop();
        assert!(status.success(), "broker exited with {status} on SIGTERM");
        self.restart();
    }

    /// Crash restart: SIGKILL, then start again on the same data.
    pub fn restart_killed(&mut self) {
        self.kill9();
        self.restart();
    }

    /// Starts the process again on the same data dir and ports and waits until it is ready.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker before restarting it");
        if let Err(why) = self.spawn_and_wait() {
            panic!("broker did not become ready after restart: {why}");
        }
    }

    /// The command line that starts this broker, for tests that want to run a second process
    /// (for example to check the data-dir lock).
    pub fn serve_command(&self) -> Command {
        self.serve_command_on_port(self.base_port)
    }

    /// Like `serve_command` but with another bootstrap port (shards follow it).
    pub fn serve_command_on_port(&self, base_port: u16) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(base_port.to_string())
            .arg("--cores")
            .arg(self.options.cores.to_string());
        if self.options.config.is_some() {
            cmd.arg("--config").arg(self.config_path());
        }
        cmd
    }

    fn config_path(&self) -> PathBuf {
        // Outside the data dir so the broker never mistakes it for a partition directory.
        self.dir.path().with_extension("properties")
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir
            .path()
            .with_extension(format!("stderr-{start}.log"))
    }

    fn write_config(&self) {
        let Some(lines) = &self.options.config else {
            return;
        };
        let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(self.config_path(), text).expect("write broker config");
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        self.write_config();
        self.starts += 1;
        let log = File::create(self.log_path(self.starts)).expect("create broker log file");
        let mut cmd = self.serve_command();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log file"))
            .stderr(log)
            .env("RUST_BACKTRACE", "1");
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", sluice_bin().display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Ready means every listener (bootstrap plus one per shard) accepts a TCP connection.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let ports: Vec<u16> = (0..=self.options.cores)
            .map(|i| self.base_port + i)
            .collect();
        for port in ports {
            loop {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    self.child = None;
                    return Err(format!("broker exited during start-up with {status}"));
                }
                if can_connect(port) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("port {port} not accepting after {READY_TIMEOUT:?}"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// What the running broker has written to stderr since its latest start.
    pub fn current_log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    /// Prints the broker's stderr of every start so a failing test shows why.
    pub fn dump_logs(&self) {
        for start in 1..=self.starts {
            let path = self.log_path(start);
            let mut text = String::new();
            if let Ok(mut f) = File::open(&path) {
                let _ = f.read_to_string(&mut text);
            }
            eprintln!(
                "===== sluice log, start {start} ({}) =====\n{}",
                path.display(),
                tail(&text, 20_000)
            );
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        self.kill9();
        for start in 1..=self.starts {
            let _ = std::fs::remove_file(self.log_path(start));
        }
        let _ = std::fs::remove_file(self.config_path());
    }
}

/// Path of the broker binary: `$SLUICE_BIN` when set (to test another build, for example a
/// release binary), else the one cargo built for this test run.
pub fn sluice_bin() -> PathBuf {
    match std::env::var_os("SLUICE_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_sluice")),
    }
}

/// Finds `count` consecutive loopback ports that are free right now. Tests run in parallel
/// threads and in several processes, so the start point mixes the pid, the clock and a
/// per-process counter instead of scanning from a fixed port.
pub fn free_port_range(count: u16) -> u16 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut seed = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(nanos)
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(97));
    for _ in 0..1000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let span = PORT_RANGE_LEN - count;
        let base = PORT_RANGE_START + ((seed >> 8) % u32::from(span)) as u16;
        if (base..base + count).all(port_is_free) {
            return base;
        }
    }
    panic!("no free range of {count} ports found");
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn can_connect(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn send_signal(child: &Child, signal: i32) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the pid of a child we own and have not yet reaped.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Waits for `child` to exit for at most `timeout`; None on timeout (child still running).
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => return None,
            Err(e) => panic!("wait for child: {e}"),
        }
    }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A topic name unique within this test process, so tests sharing a broker never collide.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free loopback address for the metrics endpoint, so tests can read counters. Drawn below
/// the harness's broker port range (20000..32000), so no broker of this or another test
/// process can be given the same port afterwards.
pub fn metrics_addr() -> String {
    let seed = u64::from(std::process::id()) * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0);
    (0..1000)
        .map(|i| 10_000 + ((seed + i * 104_729) % 10_000) as u16)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .map(|port| format!("127.0.0.1:{port}"))
        .expect("a free port for the metrics endpoint")
}

/// One metric's value summed over shards, from `/metrics`.
pub fn metric(addr: &str, name: &str) -> i64 {
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read metrics");
    assert!(
        text.contains(&format!("# TYPE {name} ")),
        "{addr} is not this broker's metrics endpoint, or {name} is missing:\n{text}"
    );
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum()
}

/// Waits (bounded) until `check` holds.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends one request on a fresh connection to `port` and returns the decoded response (the
/// raw-socket tests' client: no library between the test and the wire but the codec).
pub fn call<R: kafka_protocol::protocol::Request>(
    port: u16,
    request: R,
    version: i16,
) -> R::Response {
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, StrBytes, encode_request_header_into_buffer};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
    let mut payload = BytesMut::new();
    encode_request_header_into_buffer(&mut payload, &header).expect("header");
    request.encode(&mut payload, version).expect("request");
    let mut frame = BytesMut::new();
    frame.put_i32(payload.len() as i32);
    frame.put(payload);
    stream.write_all(&frame).expect("send");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("response length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut body = Bytes::from(body);
    let header_version = ApiKey::try_from(R::KEY)
        .expect("known key")
        .response_header_version(version);
    ResponseHeader::decode(&mut body, header_version).expect("response header");
    R::Response::decode(&mut body, version).expect("response")
}
