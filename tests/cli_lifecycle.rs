//! Process-level contract of `sluice serve`: graceful stop on SIGTERM and SIGINT with exit
//! code 0, restart on the same data dir, and the data-dir lock that stops a second process.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Broker, wait_timeout};

/// A second broker on a locked data dir must give up quickly, not hang or fight for files.
const LOCK_REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn sigterm_stops_gracefully_and_restart_works() {
    let mut broker = Broker::start();
    let status = broker.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    broker.restart();
    let status = broker.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after second SIGTERM: {status}"
    );
}

#[test]
fn sigint_stops_gracefully() {
    let mut broker = Broker::start_with(common::BrokerOptions::default().with_cores(2));
    let status = broker.signal_and_wait(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "exit status after SIGINT: {status}");
}

#[test]
fn second_process_on_same_data_dir_is_refused() {
    let broker = Broker::start();
    // Same data dir, other ports, so only the lock can make it fail.
    let mut cmd = broker.serve_command_on_port(common::free_port_range(2));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn second broker");
    let status = wait_timeout(&mut child, LOCK_REFUSAL_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("second broker on a locked data dir still running after {LOCK_REFUSAL_TIMEOUT:?}")
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        !status.success(),
        "second broker exited with success; stderr: {stderr}"
    );
    assert!(
        stderr.contains(".lock"),
        "stderr of the refused broker should name the lock file: {stderr}"
    );
    // The first broker is unaffected.
    assert!(
        std::net::TcpStream::connect(broker.bootstrap()).is_ok(),
        "first broker stopped accepting"
    );
}

/// A second broker (its own data dir) on ports a running broker holds exits non-zero naming
/// the address, after the start-up retry window; the first broker keeps serving.
#[test]
fn second_process_on_the_same_ports_is_refused() {
    let broker = Broker::start();
    let other_dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = std::process::Command::new(common::sluice_bin());
    cmd.args(["serve", "--data-dir"])
        .arg(other_dir.path())
        .args([
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--metrics-addr",
            "off",
        ])
        .args(["--port", &broker.base_port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn second broker");
    let status = wait_timeout(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("second broker on busy ports still running after 20 s")
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        !status.success(),
        "second broker exited with success: {stderr}"
    );
    assert!(
        stderr.contains("cannot listen on 127.0.0.1:") && stderr.contains("in use"),
        "stderr should name the busy address: {stderr}"
    );
    assert!(
        std::net::TcpStream::connect(broker.bootstrap()).is_ok(),
        "first broker stopped accepting"
    );
}

/// `kill -9` and an immediate restart on the same ports: the dead process's listening sockets
/// may outlive it briefly (io_uring teardown is asynchronous); start-up waits for them.
#[test]
fn restart_right_after_kill_9_binds_the_same_ports() {
    let mut broker = Broker::start_with(common::BrokerOptions::default().with_cores(2));
    for _ in 0..5 {
        broker.kill9();
        broker.restart();
    }
    assert!(std::net::TcpStream::connect(broker.bootstrap()).is_ok());
}
