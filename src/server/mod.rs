//! Network front of a shard: its listeners, the accept loop (connection limits, rate-limited
//! warnings), one task per connection, and request dispatch. Every shard listens on its own
//! port of each client listener; shard 0 also owns each listener's bootstrap port. Runs on the
//! shard's executor.

pub mod connection;
pub mod dispatch;
pub mod frame;
pub mod frame_pool;
pub mod limits;
pub mod sasl;
pub mod tls;
pub mod tls_socket;
pub mod transport;
pub mod zero_copy;

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::TcpListener;

use crate::handlers::request::DispatchError;
use crate::shard::Shard;
use connection::ConnectionError;
use limits::{Admission, NodeConnections, Refusal};

/// Most connections a shard serves at once, over all its listeners; more are refused at
/// accept (a limit on everything, so a connection storm cannot exhaust memory), whatever
/// `max.connections` says.
pub const MAX_CONNECTIONS_PER_SHARD: usize = 10_000;

/// Binds a listening socket with SO_REUSEADDR (restart without waiting for TIME_WAIT) but
/// not SO_REUSEPORT, so a second broker on the same port fails loudly instead of sharing it.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // SAFETY: the descriptor comes from a socket we just created and give up ownership of.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Longest gap between two lines of the same repeating accept-loop warning.
const WARN_INTERVAL: Duration = Duration::from_secs(1);
/// Pause after a failed accept (e.g. EMFILE): the pending connection stays in the backlog,
/// so retrying at once would spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// At most one line per interval for a warning that can repeat as fast as the loop runs; the
/// occurrences in between are counted and reported with the next line.
pub struct RateLimitedWarning {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedWarning {
    /// Nothing written yet: the first occurrence is allowed at once, then one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(occurrences suppressed since the last line)` when a line may be written now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The accept loops' warnings, each limited on its own.
struct AcceptWarnings {
    failed: RateLimitedWarning,
    refused: RateLimitedWarning,
}

thread_local! {
    /// One set per shard thread, shared by its listeners: at the descriptor limit every
    /// accept fails at once (Linux checks for a free descriptor before waiting for a
    /// connection), so shard 0's two listeners would otherwise double the lines.
    static WARNINGS: std::cell::RefCell<AcceptWarnings> = std::cell::RefCell::new(AcceptWarnings {
        failed: RateLimitedWarning::new(WARN_INTERVAL),
        refused: RateLimitedWarning::new(WARN_INTERVAL),
    });
}

thread_local! {
    /// Connections open on this shard, over all its listeners (the bootstrap port included),
    /// for `MAX_CONNECTIONS_PER_SHARD`.
    static SHARD_CONNECTIONS: Cell<usize> = const { Cell::new(0) };
}

/// `Some(suppressed)` when this shard may write the warning `pick` selects now.
fn warning_allowed(pick: fn(&mut AcceptWarnings) -> &mut RateLimitedWarning) -> Option<u64> {
    WARNINGS.with(|w| pick(&mut w.borrow_mut()).allow(Instant::now()))
}

/// One client listener as a shard serves it.
pub struct ShardListener {
    /// Index in `BrokerConfig::listeners`.
    pub index: usize,
    /// Its security protocol.
    pub protocol: crate::config::SecurityProtocol,
    /// The shard's copy of its TLS configuration (SSL and SASL_SSL).
    pub tls: Option<tls::ShardTls>,
}

/// Accepts connections on one socket of `listener` until the shard starts shutting down.
pub async fn accept_loop(
    shard: Rc<Shard>,
    socket: TcpListener,
    listener: Rc<ShardListener>,
    node: Arc<NodeConnections>,
) {
    loop {
        let seen = shard.shutdown_event.generation();
        if shard.is_shutting_down() {
            return;
        }
        let accepted = futures_lite::future::or(async { Some(socket.accept().await) }, async {
            shard.shutdown_event.changed_since(seen).await;
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                if let Some(suppressed) = warning_allowed(|w| &mut w.failed) {
                    tracing::warn!(core = shard.core, error = %e, suppressed, "accept failed; retrying every 10 ms");
                }
                glommio::timer::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let admission = match admit(&stream, &node) {
            Ok(admission) => admission,
            Err(refusal) => {
                // Counted before the close, so whoever sees the close also sees the count.
                crate::metrics::with_current(|m| m.connection_refused());
                if let Some(suppressed) = warning_allowed(|w| &mut w.refused) {
                    tracing::warn!(core = shard.core, reason = %refusal, suppressed, "refusing a connection");
                }
                // Closed at once, as Kafka closes a connection over its limits.
                drop(stream);
                continue;
            }
        };
        spawn_connection(shard.clone(), stream, listener.clone(), admission);
    }
}

/// Applies the shard's hard cap and the node's `max.connections` and
/// `max.connections.per.ip` to a new connection.
fn admit(
    stream: &glommio::net::TcpStream,
    node: &Arc<NodeConnections>,
) -> Result<Admission, Refusal> {
    if SHARD_CONNECTIONS.get() >= MAX_CONNECTIONS_PER_SHARD {
        return Err(Refusal::Shard(MAX_CONNECTIONS_PER_SHARD));
    }
    let ip = stream.peer_addr().map_err(|_| Refusal::Gone)?.ip();
    node.admit(ip)
}

/// Serves one admitted connection on a task of its own; its places in the counts are given
/// back when it ends.
fn spawn_connection(
    shard: Rc<Shard>,
    stream: glommio::net::TcpStream,
    listener: Rc<ShardListener>,
    admission: Admission,
) {
    SHARD_CONNECTIONS.set(SHARD_CONNECTIONS.get() + 1);
    crate::metrics::with_current(|m| m.connection_opened());
    glommio::spawn_local(async move {
        // A bug in one request must cost one connection, not the whole shard.
        let served = futures_lite::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            connection::serve(shard, stream, listener),
        ));
        match served.await {
            Ok(Ok(())) => {}
            Ok(Err(e @ ConnectionError::Dispatch(DispatchError::Encode(_)))) => {
                tracing::error!(error = %e, "closing connection")
            }
            Ok(Err(ConnectionError::Frame(e))) if e.is_timeout() => {
                crate::metrics::with_current(|m| m.connection_timed_out());
                tracing::debug!(error = %e, "connection closed")
            }
            Ok(Err(e @ ConnectionError::Tls(_))) => {
                crate::metrics::with_current(|m| m.tls_failure());
                tracing::info!(error = %e, "TLS connection refused")
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "connection closed"),
            Err(_) => tracing::error!("a request handler panicked; its connection was closed"),
        }
        drop(admission);
        SHARD_CONNECTIONS.set(SHARD_CONNECTIONS.get() - 1);
        crate::metrics::with_current(|m| m.connection_closed());
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_warning_is_written_once_per_interval_with_the_count() {
        let mut warning = RateLimitedWarning::new(Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(warning.allow(start), Some(0));
        for ms in 1..100 {
            assert_eq!(warning.allow(start + Duration::from_millis(ms * 10)), None);
        }
        assert_eq!(warning.allow(start + Duration::from_secs(1)), Some(99));
        assert_eq!(warning.allow(start + Duration::from_millis(1500)), None);
    }
}
