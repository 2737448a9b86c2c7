//! One Sluice broker for one sweep step: a data directory of its own inside the lab's data dir,
//! a server.properties with the step's keys, free loopback ports below 32768, optional CPU
//! pinning, and a stop by pid (SIGTERM, then SIGKILL) that also deletes its data. Driven from
//! the lab's main thread.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// A running broker; dropping it stops it and deletes its data directory.
pub struct Broker {
    child: Child,
    /// Bootstrap port; shard `c` is on `port + 1 + c`.
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
}

/// How to start one broker.
pub struct BrokerSpec<'a> {
    /// The `sluice` binary.
    pub bin: &'a Path,
    /// The lab's data directory; the broker gets a fresh subdirectory.
    pub parent: &'a Path,
    /// server.properties lines.
    pub properties: &'a [(String, String)],
    /// Shards.
    pub cores: usize,
    /// `taskset -c` list for the broker, if pinned.
    pub cpus: Option<String>,
    /// Where the broker's stderr goes.
    pub log: PathBuf,
}

impl Broker {
    /// Starts the broker and waits until every port accepts.
    pub fn start(spec: &BrokerSpec<'_>) -> Result<Self> {
        let data = fresh_dir(spec.parent)?;
        let conf = data.with_extension("properties");
        let text: String = spec
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        fs::write(&conf, text).map_err(LabError::io("writing", &conf))?;
        let port = free_ports(spec.cores as u16 + 1)?;
        let stderr = fs::File::create(&spec.log).map_err(LabError::io("creating", &spec.log))?;
        let mut cmd = pinned(spec.cpus.as_deref(), spec.bin);
        cmd.args(["serve", "--data-dir"])
            .arg(data.join("log"))
            .args([
                "--port",
                &port.to_string(),
                "--cores",
                &spec.cores.to_string(),
            ])
            .arg("--config")
            .arg(&conf)
            .args(["--metrics-addr", "off"])
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd.spawn().map_err(LabError::io("starting", spec.bin))?;
        let mut broker = Self {
            child,
            port,
            data,
            log: spec.log.clone(),
        };
        broker.wait_ready(spec.cores as u16 + 1)?;
        Ok(broker)
    }

    /// The broker's pid, for CPU accounting.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, ports: u16) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in self.port..self.port + ports {
            let addr = SocketAddr::from(([127, 0, 0, 1], p));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(self.failed(format!("exited at start-up: {status}")));
                }
                if Instant::now() > deadline {
                    return Err(self.failed(format!("port {p} not accepting after 30 s")));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn failed(&self, why: String) -> LabError {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        LabError::Child {
            what: "sluice serve".into(),
            detail: format!("{why}; log: {}", tail.join(" | ")),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // SIGTERM to this pid only, so it shuts down cleanly; SIGKILL if it lingers.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.data);
        let _ = fs::remove_file(self.data.with_extension("properties"));
    }
}

/// A command run through `taskset -c CPUS` when pinned and taskset exists.
pub fn pinned(cpus: Option<&str>, bin: &Path) -> Command {
    match cpus {
        Some(list) if Path::new("/usr/bin/taskset").exists() => {
            let mut c = Command::new("/usr/bin/taskset");
            c.args(["-c", list]).arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

/// A new directory `sluice-lab-<pid>-<n>` under `parent` (never an existing one).
pub fn fresh_dir(parent: &Path) -> Result<PathBuf> {
    for n in 0..10_000 {
        let dir = parent.join(format!("sluice-lab-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LabError::io("creating", dir)(e)),
        }
    }
    Err(LabError::Usage(format!(
        "no free directory name in {}",
        parent.display()
    )))
}

/// The first of `n` consecutive free loopback ports in 20000..32000 (below the ephemeral
/// range, so clients' own ports never collide).
pub fn free_ports(n: u16) -> Result<u16> {
    let start = 20_000 + (std::process::id() % 6000) as u16 * 2;
    let candidates = (start..32_000 - n).chain(20_000..start);
    for first in candidates.step_by(n as usize + 1) {
        let all_free = (first..first + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return Ok(first);
        }
    }
    Err(LabError::Usage(
        "no free loopback ports in 20000..32000".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_32768() {
        let p = free_ports(3).unwrap();
        assert!((20_000..32_000).contains(&p));
    }

    #[test]
    fn fresh_dirs_differ() {
        let t = tempfile::tempdir().unwrap();
        let a = fresh_dir(t.path()).unwrap();
        let b = fresh_dir(t.path()).unwrap();
        assert_ne!(a, b);
    }
}
