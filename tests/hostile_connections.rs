//! Connection patterns that once froze a shard or let a client hold the broker's resources,
//! driven against the real binary over real sockets: frames that announce megabytes and send
//! a few bytes, a client sending one byte per second, idle connections, too many connections
//! from one address or on one node, the same attack before SASL authentication, and the
//! accept loop at the descriptor limit. Each test checks that other clients are still served.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Broker, BrokerOptions, metric, metrics_addr, wait_for};
use sluice::client::{Connection, Credentials, SaslMechanism};

/// How long to wait for the broker to answer or close a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Attackers per port, as in the report that found the freeze.
const ATTACKERS: usize = 52;
/// What each attacker announces.
const ANNOUNCED: i32 = 10 << 20;

/// ApiVersions v0, correlation id 2, client id "rdkafka" (what kcat sends first).
fn api_versions_v0() -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 17, 0, 18, 0, 0, 0, 0, 0, 2, 0, 7];
    frame.extend_from_slice(b"rdkafka");
    frame
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to broker");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Sends ApiVersions v0 on `stream` and checks the answer (correlation id 2, no error).
fn exchange(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(&api_versions_v0())?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    assert_eq!(&body[..6], &[0, 0, 0, 2, 0, 0], "correlation id 2, error 0");
    Ok(())
}

/// A fresh connection to `port` is answered.
fn assert_answers(port: u16, what: &str) {
    let mut stream = connect(port);
    if let Err(e) = exchange(&mut stream) {
        panic!("{what}: port {port} did not answer ApiVersions: {e}");
    }
}

/// How long until the broker closes `stream` (EOF or reset), reading for at most `limit`;
/// None if it is still open then. Fails on any bytes received.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(limit))
        .expect("set read timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => Some(start.elapsed()),
        Ok(n) => panic!("expected no answer, got {n} bytes"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(_) => Some(start.elapsed()),
    }
}

/// Still connected: nothing to read and no EOF within a short look.
fn still_open(stream: &mut TcpStream) -> bool {
    closed_within(stream, Duration::from_millis(50)).is_none()
}

/// Opens `count` connections to `port`, each announcing `announced` bytes and sending six.
fn attack(port: u16, count: usize, announced: i32) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut s = connect(port);
            // The broker may refuse the size at once (the SASL test): writes may then fail.
            let _ = s.write_all(&announced.to_be_bytes());
            let _ = s.write_all(&[0, 18, 0, 0, 0, 0]);
            s
        })
        .collect()
}

/// Defect: 52 connections that each announced a 10 MiB frame and sent 6 bytes took the whole
/// `queued.max.request.bytes` budget, and the bootstrap and shard ports stopped answering. Now
/// a frame is charged as its bytes arrive, so the attackers hold almost nothing.
#[test]
fn announced_but_unsent_frames_do_not_starve_other_clients() {
    let metrics = metrics_addr();
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_cores(2)
            // 8 MiB per shard: less than one attacker's announced frame.
            .with_config("queued.max.request.bytes", &(16 << 20).to_string())
            .with_config("sluice.metrics.addr", &metrics),
    );
    let ports = [
        broker.base_port(),
        broker.shard_port(0),
        broker.shard_port(1),
    ];
    let mut attackers = attack(broker.base_port(), ATTACKERS, ANNOUNCED);
    attackers.extend(attack(broker.shard_port(1), ATTACKERS, ANNOUNCED));
    for port in ports {
        assert_answers(port, "during the attack");
    }
    // The attackers' reservations: at most one 4 KiB step each ahead of their 6 bytes.
    let budget = 2 * (8 << 20);
    let most_held = 2 * ATTACKERS as i64 * (4 << 10);
    wait_for("request memory published", Duration::from_secs(5), || {
        metric(&metrics, "sluice_request_memory_free_bytes") >= budget - most_held
    });
    for (i, attacker) in attackers.iter_mut().enumerate() {
        assert!(still_open(attacker), "attacker {i} was disconnected");
    }
}

/// Defect (9): a client sending one byte per second was never timed out. Once a frame's first
/// byte has arrived, the frame must be complete within `sluice.request.read.timeout.ms`.
#[test]
fn a_frame_trickling_one_byte_per_second_is_cut_off_at_the_read_timeout() {
    let broker = Broker::start_with(
        BrokerOptions::default().with_config("sluice.request.read.timeout.ms", "2000"),
    );
    let mut slow = connect(broker.base_port());
    // A 40-byte frame, size prefix included, sent one byte a second.
    let frame: Vec<u8> = [&40i32.to_be_bytes()[..], &[0u8; 40]].concat();
    let start = Instant::now();
    let mut closed_after = None;
    for byte in frame.iter().take(12) {
        if slow.write_all(&[*byte]).is_err() {
            closed_after = Some(start.elapsed());
            break;
        }
        if closed_within(&mut slow, Duration::from_secs(1)).is_some() {
            closed_after = Some(start.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("a 1 byte/s frame still open after 12 s");
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(5)).contains(&closed_after),
        "closed after {closed_after:?}, expected about 2 s"
    );
    assert_answers(broker.base_port(), "after the slow client");
}

/// `connections.max.idle.ms`: a connection with no request for that long is closed; one that
/// keeps sending requests is not.
#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let broker =
        Broker::start_with(BrokerOptions::default().with_config("connections.max.idle.ms", "1500"));
    let mut idle = connect(broker.base_port());
    exchange(&mut idle).expect("first request answered");
    let mut busy = connect(broker.shard_port(0));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        exchange(&mut busy).expect("a busy connection is never idle");
        std::thread::sleep(Duration::from_millis(400));
    }
    let closed = closed_within(&mut idle, IO_TIMEOUT).map(|_| start.elapsed());
    let closed = closed.expect("idle connection still open");
    assert!(
        closed >= Duration::from_millis(1400),
        "closed after {closed:?}, before connections.max.idle.ms"
    );
}

/// Kafka's idle rule counts bytes out too: a client that sends requests but never reads the
/// replies leaves the broker blocked on a full socket; after `connections.max.idle.ms` without
/// progress the connection is closed and what it held is freed.
#[test]
fn a_client_that_never_reads_replies_is_closed_after_connections_max_idle_ms() {
    let metrics = metrics_addr();
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_config("connections.max.idle.ms", "1500")
            .with_config("sluice.metrics.addr", &metrics),
    );
    let stalled = connect(broker.base_port());
    stalled.set_nonblocking(true).expect("nonblocking");
    // Pipeline requests until neither side's buffers take more: the broker is then blocked
    // writing a reply nobody reads. The requests go out 64 KiB at a time: one small write per
    // request fills megabytes of loopback buffers so slowly on a loaded machine that the
    // broker's write timeout can fire first.
    let chunk = api_versions_v0().repeat(64 * 1024 / api_versions_v0().len());
    let start = Instant::now();
    let mut sent = 0usize;
    let mut blocked_since = Instant::now();
    let mut closed_early = false;
    while blocked_since.elapsed() < Duration::from_millis(500) {
        let at = sent % chunk.len();
        match (&stalled).write(&chunk[at..]) {
            Ok(n) => {
                sent += n;
                blocked_since = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            // The broker's write timeout may still win the race on a slow machine: that is
            // the close under test, as long as a full idle period can have passed.
            Err(e) => {
                assert!(
                    start.elapsed() >= Duration::from_millis(1500),
                    "closed after {:?}, while its requests were still being read: {e}",
                    start.elapsed()
                );
                closed_early = true;
                break;
            }
        }
        assert!(
            sent < 1 << 30,
            "the broker read 1 GiB of requests without blocking"
        );
    }
    if !closed_early {
        assert!(metric(&metrics, "sluice_connections") >= 1);
    }
    wait_for(
        "the stalled connection closed",
        Duration::from_secs(10),
        || metric(&metrics, "sluice_connections") == 0,
    );
    assert_answers(broker.base_port(), "after the stalled reader");
}

/// `max.connections.per.ip`: the connection over the limit is closed at once and counted;
/// closing one gives its place back.
#[test]
fn max_connections_per_ip_refuses_the_extra_connection() {
    let metrics = metrics_addr();
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_config("max.connections.per.ip", "3")
            .with_config("sluice.metrics.addr", &metrics),
    );
    let port = broker.base_port();
    let mut held = admitted_connections(port, 3);
    let mut extra = connect(port);
    let _ = extra.write_all(&api_versions_v0());
    assert!(
        closed_within(&mut extra, IO_TIMEOUT).is_some(),
        "the fourth connection from 127.0.0.1 was served"
    );
    assert!(metric(&metrics, "sluice_connections_refused_total") >= 1);
    held.pop();
    admitted_connections(port, 1);
}

/// `max.connections` counts the whole node: connections to the bootstrap port and to every
/// shard's port together.
#[test]
fn max_connections_counts_every_port_of_the_node() {
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_cores(2)
            .with_config("max.connections", "2"),
    );
    let mut held = admitted_connections(broker.base_port(), 1);
    held.extend(admitted_connections(broker.shard_port(1), 1));
    let mut extra = connect(broker.shard_port(0));
    let _ = extra.write_all(&api_versions_v0());
    assert!(
        closed_within(&mut extra, IO_TIMEOUT).is_some(),
        "a third connection on a two-connection node was served"
    );
    held.clear();
    admitted_connections(broker.shard_port(0), 2);
}

/// Opens `count` connections that are each answered. The harness's readiness probes and
/// connections a test just closed may still count for a moment, so a refused one is retried.
fn admitted_connections(port: u16, count: usize) -> Vec<TcpStream> {
    let mut out = Vec::new();
    while out.len() < count {
        let mut stream = None;
        wait_for("a connection admitted", IO_TIMEOUT, || {
            let mut s = connect(port);
            let ok = exchange(&mut s).is_ok();
            stream = ok.then_some(s);
            ok
        });
        out.extend(stream);
    }
    out
}

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;

/// Before SASL authentication a frame may be at most `sasl.server.max.receive.size` (512 KiB):
/// the 10 MiB announcements are refused at once, and frames under the cap that stall hold only
/// what arrived, so ApiVersions and authentication still work for everyone else.
#[test]
fn unauthenticated_frames_are_bounded_on_a_sasl_listener() {
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_config("listeners", "SASL_PLAINTEXT://127.0.0.1:9092")
            .with_config("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS)
            .with_config("queued.max.request.bytes", &(4 << 20).to_string()),
    );
    let port = broker.base_port();
    for (i, mut attacker) in attack(port, ATTACKERS, ANNOUNCED).into_iter().enumerate() {
        assert!(
            closed_within(&mut attacker, IO_TIMEOUT).is_some(),
            "unauthenticated 10 MiB frame {i} was not refused"
        );
    }
    let mut under_cap = attack(port, ATTACKERS, 500_000);
    assert_answers(port, "with unauthenticated frames pending");
    let credentials = Credentials {
        username: "alice".into(),
        password: "alice-secret".into(),
        mechanism: SaslMechanism::Plain,
    };
    Connection::connect(&broker.bootstrap(), Some(&credentials))
        .expect("authenticate while unauthenticated frames are pending");
    for (i, attacker) in under_cap.iter_mut().enumerate() {
        assert!(
            still_open(attacker),
            "attacker {i} under the cap was dropped"
        );
    }
}

/// Defect (9): at the descriptor limit the accept loop logged a warning every 10 ms. Now it
/// writes at most one line a second (with the count of what it held back), and accepts again
/// once descriptors are free.
#[test]
fn accept_failures_at_the_descriptor_limit_are_logged_once_a_second() {
    let broker = Broker::start();
    let pid = broker.pid() as libc::pid_t;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the broker's descriptors")
        .count() as u64;
    let original = set_nofile(pid, open_fds + 1);
    // The kernel completes these handshakes; the broker cannot accept them (EMFILE).
    let _waiting: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", broker.base_port())).expect("connect"))
        .collect();
    let failures = || broker.current_log().matches("accept failed").count();
    wait_for("an accept failure logged", IO_TIMEOUT, || failures() >= 1);
    // The measurement window: at 10 ms per retry the old loop wrote ~300 lines here.
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let lines = failures();
    let allowed = window.elapsed().as_secs() as usize + 2;
    set_nofile(pid, original);
    assert!(
        (1..=allowed).contains(&lines),
        "{lines} accept-failure lines in about 3 s"
    );
    let held_back = |line: &str| {
        line.split("suppressed=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(
        broker.current_log().lines().any(|l| held_back(l) > 0),
        "no line reports the failures it held back"
    );
    wait_for("accepting again", Duration::from_secs(10), || {
        let mut s = connect(broker.base_port());
        exchange(&mut s).is_ok()
    });
}

/// Sets the soft RLIMIT_NOFILE of process `pid`; returns the previous soft limit.
fn set_nofile(pid: libc::pid_t, soft: u64) -> u64 {
    // SAFETY: prlimit with valid pointers to local rlimit structs.
    unsafe {
        let mut old: libc::rlimit = std::mem::zeroed();
        assert_eq!(
            libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &raw mut old),
            0
        );
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: old.rlim_max,
        };
        assert_eq!(
            libc::prlimit(
                pid,
                libc::RLIMIT_NOFILE,
                &raw const new,
                std::ptr::null_mut()
            ),
            0,
            "prlimit"
        );
        old.rlim_cur
    }
}
