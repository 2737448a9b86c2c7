//! Network front of a shard: its listener(s), the accept loop, one task per connection, and
//! request dispatch. Every shard listens on its own port; shard 0 also owns the bootstrap
//! port. Runs on the shard's executor.

pub mod connection;
pub mod dispatch;
pub mod request_memory;
pub mod sasl;
pub mod zero_copy;

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;

use glommio::net::TcpListener;

use crate::handlers::request::DispatchError;
use crate::shard::Shard;
use connection::ConnectionError;

/// Most connections a shard serves at once; more are refused at accept (a limit on
/// everything, so a connection storm cannot exhaust memory).
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

/// Accepts connections until the shard starts shutting down.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    let connections = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let seen = shard.shutdown_event.generation();
        if shard.is_shutting_down() {
            return;
        }
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            shard.shutdown_event.changed_since(seen).await;
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                tracing::warn!(core = shard.core, error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if connections.get() >= MAX_CONNECTIONS_PER_SHARD {
            tracing::warn!(
                core = shard.core,
                "connection limit reached; refusing a connection"
            );
            continue;
        }
        connections.set(connections.get() + 1);
        crate::metrics::with_current(|m| m.connection_opened());
        let (shard, connections) = (shard.clone(), connections.clone());
        glommio::spawn_local(async move {
            // A bug in one request must cost one connection, not the whole shard.
            let served = futures_lite::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
                connection::serve(shard, stream),
            ));
            match served.await {
                Ok(Ok(())) => {}
                Ok(Err(e @ ConnectionError::Dispatch(DispatchError::Encode(_)))) => {
                    tracing::error!(error = %e, "closing connection")
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "connection closed"),
                Err(_) => tracing::error!("a request handler panicked; its connection was closed"),
            }
            connections.set(connections.get() - 1);
            crate::metrics::with_current(|m| m.connection_closed());
        })
        .detach();
    }
}
