//! Harness for the CLI tests: starts the real `sluice serve` on free ports in a temporary
//! data directory, runs `sluice` subcommands as subprocesses, and normalises the parts of
//! their output that vary between runs (topic ids, timestamps, CRCs).
//!
//! Kept apart from `tests/common` (the broker tests' harness) so the two can evolve alone.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Shards the test broker runs; it listens on port P (bootstrap) and P+1..=P+SHARDS.
pub const SHARDS: u16 = 2;
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `sluice` binary under test. `SLUICE_BIN` overrides Cargo's path: useful when several
/// worktrees share one target directory and the uplifted `target/debug/sluice` may belong
/// to another branch.
pub fn sluice_bin() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let bin = std::env::var_os("SLUICE_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")));
            // Fail once, clearly, rather than in every assertion with a foreign binary.
            let help = Command::new(&bin)
                .arg("--help")
                .output()
                .expect("run sluice --help");
            assert!(
                String::from_utf8_lossy(&help.stdout).contains("dump-log"),
                "{} has no tool subcommands: another branch's build in a shared target \
                 directory? Point SLUICE_BIN at this branch's binary.",
                bin.display()
            );
            bin
        })
        .clone()
}

/// The broker to test against: `SLUICE_BROKER_BIN` (e.g. a build of another branch, to try
/// the tools against APIs not merged yet), else the binary under test.
pub fn broker_bin() -> PathBuf {
    std::env::var_os("SLUICE_BROKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(sluice_bin)
}

/// What a finished `sluice` run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self.stdout
    }

    /// Asserts failure with `code` and returns stderr.
    #[track_caller]
    pub fn fails(self, code: i32) -> String {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self.stderr
    }
}

/// Runs `sluice args...` with `stdin`, waiting for it to exit.
pub fn sluice(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(sluice_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    // Invariant: stdin was requested as a pipe above.
    let mut input = child.stdin.take().expect("stdin pipe");
    // A command that fails early closes stdin; its exit status tells the story.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let out = child.wait_with_output().expect("wait for sluice");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// A running broker with its own data directory; killed on drop.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Self {
        for _ in 0..20 {
            let data_dir = tempfile::tempdir().expect("tempdir");
            let port = free_port_range(SHARDS + 1);
            let log = std::fs::File::create(data_dir.path().join("broker.log")).expect("log");
            let child = Command::new(broker_bin())
                .args(["serve", "--data-dir"])
                .arg(data_dir.path().join("data"))
                .args(["--port", &port.to_string(), "--cores", &SHARDS.to_string()])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn broker");
            let mut broker = Broker {
                child: Some(child),
                port,
                data_dir,
            };
            if broker.wait_ready() {
                return broker;
            }
            // Lost a race for a port, most likely: say so and try another range.
            eprintln!("broker on port {port} did not start:\n{}", broker.log());
            broker.kill();
        }
        panic!("broker did not start after 20 attempts");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            let up = (0..=SHARDS).all(|i| TcpStream::connect(("127.0.0.1", self.port + i)).is_ok());
            if up {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `sluice args... --bootstrap-server <this broker>`.
    pub fn cli(&self, args: &[&str]) -> Run {
        self.cli_with_stdin(args, "")
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let bootstrap = self.bootstrap();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--bootstrap-server", &bootstrap]);
        sluice(&all, stdin)
    }

    /// The broker's data directory (`<data_dir>/<topic>-<partition>/...`).
    pub fn data(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// SIGTERM and wait: a graceful shutdown that flushes and closes segments.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("broker ignored SIGTERM for 20 s");
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("broker.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A base port P with P..P+count all free right now.
fn free_port_range(count: u16) -> u16 {
    loop {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        // Invariant: a bound listener has a local address.
        let base = probe.local_addr().expect("addr").port();
        drop(probe);
        if base.checked_add(count).is_none() {
            continue;
        }
        let all_free = (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
}

/// Replaces the token after each `label` with `*`, for values that differ run to run.
pub fn mask_after(text: &str, label: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(label) {
        let (head, tail) = rest.split_at(at + label.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == ',' || c == '"')
            .unwrap_or(tail.len());
        out.push('*');
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A segment file path in the broker's data directory.
pub fn segment_file(data: &Path, topic: &str, partition: i32, ext: &str) -> String {
    data.join(format!("{topic}-{partition}"))
        .join(format!("{:020}.{ext}", 0))
        .display()
        .to_string()
}
