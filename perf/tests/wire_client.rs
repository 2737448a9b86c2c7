//! `sluice-perf --client wire` against a real broker: the lean client's hand-written Produce,
//! ListOffsets and Fetch requests must be accepted, and every acknowledged record must come
//! back to its consumer with its timestamp header.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker process killed when the test ends.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `sluice` binary cargo built next to this package's binary (same target directory).
fn sluice_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice-perf")).with_file_name("sluice")
}

/// Two consecutive free loopback ports below 32768 (above it the kernel hands out client ports).
fn free_ports() -> u16 {
    let start = 21_000 + (std::process::id() % 5_000) as u16 * 2;
    (0..2_000)
        .map(|k| 21_000 + (start - 21_000 + k * 2) % 10_000)
        .find(|&p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok()
                && TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
        })
        .expect("no free ports")
}

fn start_broker(data: &std::path::Path, port: u16) -> Broker {
    let child = Command::new(sluice_bin())
        .args(["serve", "--cores", "1", "--metrics-addr", "off", "--port"])
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting sluice (built by `cargo test` for the workspace)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not open port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker(child)
}

#[test]
fn the_wire_client_produces_and_consumes_every_record_with_its_latency() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports();
    let _broker = start_broker(&dir.path().join("data"), port);
    let json = dir.path().join("run.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-perf"))
        .args([
            "--client",
            "wire",
            "--scenario",
            "e2e",
            "--rate",
            "2000",
            "--acks",
            "all",
        ])
        .args([
            "--linger-ms",
            "1",
            "--warmup-secs",
            "1",
            "--duration-secs",
            "2",
            "--partitions",
            "2",
        ])
        .args(["--message-size", "200", "--quiet", "--bootstrap-server"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sluice-perf failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &report["runs"][0];
    let (produce, consume) = (&run["produce"], &run["consume"]);
    // 2 s measured at 2,000 msg/s: about 4,000 records each way, none lost or refused.
    let acked = produce["msgs"].as_u64().unwrap();
    assert!((3_500..=4_500).contains(&acked), "acked {acked}: {stderr}");
    assert_eq!(produce["errors"], 0, "{stderr}");
    assert_eq!(consume["errors"], 0, "{stderr}");
    assert_eq!(run["unacked"], 0);
    assert_eq!(run["unsent"], 0);
    assert_eq!(run["foreign_records"], 0);
    let consumed = consume["msgs"].as_u64().unwrap();
    assert!(
        consumed.abs_diff(acked) <= 200,
        "acked {acked}, consumed {consumed}"
    );
    // Every record due in the window has a latency, and it is a sane one.
    let ack_latencies = produce["latency"]["count"].as_u64().unwrap();
    let e2e_latencies = consume["latency"]["count"].as_u64().unwrap();
    assert!(
        ack_latencies >= 3_500 && e2e_latencies >= 3_500,
        "{produce} {consume}"
    );
    let p50 = consume["latency"]["p50_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 1_000.0, "e2e p50 {p50} ms");
}

#[test]
fn the_wire_client_refuses_what_it_cannot_measure() {
    for args in [
        &["--client", "wire", "--scenario", "consume"][..],
        &["--client", "wire", "--rate", "max"],
        &["--client", "wire", "--compression", "lz4"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice-perf"))
            .args(args)
            .args(["--bootstrap-server", "127.0.0.1:1"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--client wire"),
            "{args:?}"
        );
    }
}
