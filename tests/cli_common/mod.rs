//! Harness for the CLI tests, on top of the broker harness in `tests/common`: runs `sluice`
//! subcommands as subprocesses against a test broker, and normalises the parts of their output
//! that vary between runs (topic ids, timestamps, CRCs).

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{Broker, BrokerOptions};

/// Shards the test broker runs; it listens on port P (bootstrap) and P+1..=P+SHARDS.
pub const SHARDS: u16 = 2;

/// The `sluice` binary under test (`common::sluice_bin`), checked once to have the tool
/// subcommands.
pub fn sluice_bin() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let bin = crate::common::sluice_bin();
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

/// Starts the CLI tests' broker (two shards, so commands meet a multi-broker cluster).
pub fn start_broker() -> Broker {
    Broker::start_with(BrokerOptions::default().with_cores(SHARDS))
}

/// `sluice` subcommands pointed at a test broker.
pub trait Cli {
    /// Runs `sluice args... --bootstrap-server <this broker>`.
    fn cli(&self, args: &[&str]) -> Run {
        self.cli_with_stdin(args, "")
    }

    fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Run;
}

impl Cli for Broker {
    fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let bootstrap = self.bootstrap();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--bootstrap-server", &bootstrap]);
        sluice(&all, stdin)
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

/// Creates `topic` with `sluice topics create` and checks the tool's answer.
pub fn create(broker: &Broker, topic: &str, partitions: &str) {
    let out = broker
        .cli(&[
            "topics",
            "create",
            "--topic",
            topic,
            "--partitions",
            partitions,
        ])
        .ok();
    assert_eq!(out, format!("Created topic {topic}.\n"));
}
