//! An embedded Sluice broker for runs without `--bootstrap-server`: `sluice serve` on a fresh
//! temp dir and a free block of ports, killed when the run ends.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the broker may take to open all its ports.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Embedded {
    child: Child,
    /// Held so the data dir lives exactly as long as the broker.
    _data_dir: tempfile::TempDir,
    pub bootstrap: String,
    pub command: String,
}

impl Embedded {
    /// Starts `sluice serve` with `cores` shards: bootstrap port P and shard ports P+1..P+cores.
    pub fn start(bin: Option<&Path>, cores: usize) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => default_bin()?,
        };
        let data_dir = tempfile::Builder::new()
            .prefix("sluice-perf-")
            .tempdir()
            .context("creating data dir")?;
        let port = free_port_block(cores as u16 + 1)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--port")
            .arg(port.to_string())
            .arg("--cores")
            .arg(cores.to_string())
            .stdin(Stdio::null());
        let command = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut me = Self {
            child,
            _data_dir: data_dir,
            bootstrap: format!("127.0.0.1:{port}"),
            command,
        };
        me.wait_ready(port, cores as u16 + 1)?;
        Ok(me)
    }

    /// Waits until every port of the block accepts a connection, or the broker exits.
    fn wait_ready(&mut self, first: u16, count: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        for port in first..first + count {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if let Some(status) = self.child.try_wait()? {
                    bail!(
                        "embedded broker exited before port {port} opened: {status} ({})",
                        self.command
                    );
                }
                if Instant::now() >= deadline {
                    bail!(
                        "embedded broker: port {port} not accepting after {START_TIMEOUT:?} ({})",
                        self.command
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice` in the directory of this executable (both live in the same cargo target dir).
fn default_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating own executable")?;
    let bin = me.with_file_name("sluice");
    if !bin.exists() {
        bail!(
            "no broker at {} (build it with `cargo build --release --bin sluice`, pass --sluice-bin, or give --bootstrap-server)",
            bin.display()
        );
    }
    Ok(bin)
}

/// First port of `count` consecutive ports that are free now. A race with another process is
/// possible but harmless: the broker then fails to bind and we report it.
fn free_port_block(count: u16) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let first = probe.local_addr()?.port();
        drop(probe);
        if first.checked_add(count).is_none() {
            continue;
        }
        let all_free =
            (first..first + count).all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
        if all_free {
            return Ok(first);
        }
    }
    bail!("no block of {count} free ports found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_free_block() {
        let first = free_port_block(3).unwrap();
        for p in first..first + 3 {
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).unwrap();
        }
    }
}
