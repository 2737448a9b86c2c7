//! The quorum's transport (issue 13): openraft's `RaftNetworkFactory`/`RaftNetwork` over tokio
//! TCP to each peer's CONTROLLER listener, plus the client side of `Forward`. Runs on the
//! controller thread's current-thread tokio runtime.
//!
//! Each openraft client owns one connection to its peer, opened lazily and reopened after any
//! failure; requests on it are sequential (openraft never has two in flight on one client), so
//! a reply is matched by its id. The outgoing socket is bound to this node's own controller
//! host, so nodes on 127.0.0.1/.2/.3 are told apart by address.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tokio::net::{TcpSocket, TcpStream};

use super::rpc::{
    Committed, ForwardError, FrameError, RequestFrame, ResponseFrame, Rpc, RpcReply, read_frame,
    write_frame,
};
use super::{ControllerNode, MetadataMachine, QuorumTypes};

/// Links to cut, as `(from, to)` node-id pairs: a test hook to partition nodes without
/// iptables. The transport of node `from` fails every request to `to` as unreachable while the
/// pair is in the set. Empty in production.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan(Arc<Mutex<HashSet<(u64, u64)>>>);

impl FaultPlan {
    /// Cuts both directions between `a` and `b`.
    pub fn cut(&self, a: u64, b: u64) {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert((a, b));
        set.insert((b, a));
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Whether requests from `from` to `to` are dropped.
    #[must_use]
    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(from, to))
    }
}

/// Why one request to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made (refused, no route, cut by the [`FaultPlan`]).
    #[error("cannot reach controller {node}: {reason}")]
    Unreachable {
        /// The peer's CONTROLLER endpoint.
        node: ControllerNode,
        /// Why, in words.
        reason: String,
    },
    /// The peer did not answer within the request timeout.
    #[error("controller request timed out after {0:?}")]
    TimedOut(Duration),
    /// The connection broke or carried a bad frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer answered with the wrong reply variant or id.
    #[error("controller peer answered out of protocol")]
    Protocol,
}

/// The factory openraft asks for a client per peer; one per controller.
pub struct ControllerNetwork<M> {
    own_id: u64,
    own_host: Option<IpAddr>,
    request_timeout: Duration,
    faults: FaultPlan,
    _machine: std::marker::PhantomData<fn() -> M>,
}

impl<M> ControllerNetwork<M> {
    /// The transport of node `own_id`, whose CONTROLLER listener is on `own`; one request
    /// waits at most `request_timeout` (`controller.quorum.request.timeout.ms`).
    #[must_use]
    pub fn new(
        own_id: u64,
        own: &ControllerNode,
        request_timeout: Duration,
        faults: FaultPlan,
    ) -> Self {
        Self {
            own_id,
            own_host: own.host.parse().ok(),
            request_timeout,
            faults,
            _machine: std::marker::PhantomData,
        }
    }

    /// A client to `target`, connected on first use.
    #[must_use]
    pub fn client(&self, target: u64, node: &ControllerNode) -> PeerClient<M> {
        PeerClient {
            own_id: self.own_id,
            own_host: self.own_host,
            target,
            node: node.clone(),
            request_timeout: self.request_timeout,
            faults: self.faults.clone(),
            conn: None,
            next_id: 0,
            _machine: std::marker::PhantomData,
        }
    }
}

impl<M: MetadataMachine> RaftNetworkFactory<QuorumTypes<M>> for ControllerNetwork<M> {
    type Network = PeerClient<M>;

    async fn new_client(&mut self, target: u64, node: &ControllerNode) -> PeerClient<M> {
        self.client(target, node)
    }
}

/// One connection to one peer's CONTROLLER listener.
pub struct PeerClient<M> {
    own_id: u64,
    own_host: Option<IpAddr>,
    target: u64,
    node: ControllerNode,
    request_timeout: Duration,
    faults: FaultPlan,
    conn: Option<TcpStream>,
    next_id: u64,
    _machine: std::marker::PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for PeerClient<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PeerClient({} -> {}@{})",
            self.own_id, self.target, self.node
        )
    }
}

impl<M: MetadataMachine> PeerClient<M> {
    /// Sends `rpc` and waits for its reply, within the request timeout. Any failure drops the
    /// connection, so a late reply can never be read as the answer to the next request.
    async fn call(&mut self, rpc: Rpc<M>, ttl: Duration) -> Result<RpcReply<M>, TransportError> {
        if self.faults.is_cut(self.own_id, self.target) {
            self.conn = None;
            return Err(self.unreachable("link cut by the fault plan"));
        }
        let ttl = ttl.min(self.request_timeout);
        let result = tokio::time::timeout(ttl, self.exchange(rpc)).await;
        let out = match result {
            Ok(r) => r,
            Err(_) => Err(TransportError::TimedOut(ttl)),
        };
        if out.is_err() {
            self.conn = None;
        }
        out
    }

    async fn exchange(&mut self, rpc: Rpc<M>) -> Result<RpcReply<M>, TransportError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(TransportError::Protocol);
        };
        self.next_id += 1;
        let id = self.next_id;
        write_frame(conn, &RequestFrame { id, rpc }).await?;
        let reply: ResponseFrame<M> = read_frame(conn).await?;
        if reply.id != id {
            return Err(TransportError::Protocol);
        }
        Ok(reply.reply)
    }

    async fn connect(&self) -> Result<TcpStream, TransportError> {
        let addr = tokio::net::lookup_host((self.node.host.as_str(), self.node.port))
            .await
            .map_err(|e| self.unreachable(&e.to_string()))?
            .next()
            .ok_or_else(|| self.unreachable("host resolves to no address"))?;
        let socket = self
            .socket_for(addr)
            .map_err(|e| self.unreachable(&e.to_string()))?;
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| self.unreachable(&e.to_string()))?;
        // Raft messages are small and latency-bound.
        stream.set_nodelay(true).map_err(FrameError::Io)?;
        Ok(stream)
    }

    /// A socket bound to this node's own controller host (port 0) when it is an address of the
    /// same family as the peer's, so per-node addresses stay distinct on one machine.
    fn socket_for(&self, peer: SocketAddr) -> std::io::Result<TcpSocket> {
        let socket = if peer.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(host) = self.own_host.filter(|h| h.is_ipv4() == peer.is_ipv4()) {
            socket.bind(SocketAddr::new(host, 0))?;
        }
        Ok(socket)
    }

    fn unreachable(&self, reason: &str) -> TransportError {
        TransportError::Unreachable {
            node: self.node.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Forwards a client command to this peer (believed to be the leader) and returns what
    /// its `client_write` answered. `ttl` bounds the whole exchange.
    ///
    /// # Errors
    /// [`TransportError`] when the peer cannot be asked; the inner [`ForwardError`] when it
    /// was asked and did not commit the command.
    pub async fn forward(
        &mut self,
        cmd: M::Command,
        ttl: Duration,
    ) -> Result<Result<Committed<M>, ForwardError>, TransportError> {
        // A forwarded write may legitimately take longer than one Raft RPC: it waits for a
        // commit. So its deadline is the caller's, not the request timeout.
        let saved = std::mem::replace(&mut self.request_timeout, ttl);
        let reply = self.call(Rpc::Forward(cmd), ttl).await;
        self.request_timeout = saved;
        match reply? {
            RpcReply::Forward(r) => Ok(r),
            _ => Err(TransportError::Protocol),
        }
    }
}

impl<M: MetadataMachine> PeerClient<M> {
    /// Tells this peer (believed to lead) that node `from` is alive.
    ///
    /// # Errors
    /// [`TransportError`] when the peer cannot be asked; the inner [`ForwardError`] when it
    /// does not lead.
    pub async fn heartbeat(
        &mut self,
        from: u64,
        ttl: Duration,
    ) -> Result<Result<(), ForwardError>, TransportError> {
        match self.call(Rpc::Heartbeat(from), ttl).await? {
            RpcReply::Heartbeat(r) => Ok(r),
            _ => Err(TransportError::Protocol),
        }
    }

    /// The quorum's state as this peer sees it.
    ///
    /// # Errors
    /// [`TransportError`] when the peer cannot be asked.
    pub async fn status(&mut self, ttl: Duration) -> Result<super::QuorumMetrics, TransportError> {
        match self.call(Rpc::Status, ttl).await? {
            RpcReply::Status(m) => Ok(m),
            _ => Err(TransportError::Protocol),
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, ControllerNode, RaftError<u64, E>>;

/// Maps a transport failure to openraft's error: unreachable peers are backed off, other
/// failures retried at once.
fn to_rpc_error<E: std::error::Error>(e: &TransportError) -> RPCError<u64, ControllerNode, E> {
    match e {
        TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(e)),
        _ => RPCError::Network(NetworkError::new(e)),
    }
}

fn remote<E: std::error::Error>(
    target: u64,
    node: &ControllerNode,
    e: E,
) -> RPCError<u64, ControllerNode, E> {
    RPCError::RemoteError(RemoteError::new_with_node(target, node.clone(), e))
}

fn protocol_error<E: std::error::Error>() -> RPCError<u64, ControllerNode, E> {
    RPCError::Network(NetworkError::new(&TransportError::Protocol))
}

impl<M: MetadataMachine> RaftNetwork<QuorumTypes<M>> for PeerClient<M> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<QuorumTypes<M>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self.call(Rpc::AppendEntries(rpc), option.hard_ttl()).await {
            Ok(RpcReply::AppendEntries(r)) => r.map_err(|e| remote(self.target, &self.node, e)),
            Ok(_) => Err(protocol_error()),
            Err(e) => Err(to_rpc_error(&e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<QuorumTypes<M>>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        match self
            .call(Rpc::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(RpcReply::InstallSnapshot(r)) => r.map_err(|e| remote(self.target, &self.node, e)),
            Ok(_) => Err(protocol_error()),
            Err(e) => Err(to_rpc_error(&e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        match self.call(Rpc::Vote(rpc), option.hard_ttl()).await {
            Ok(RpcReply::Vote(r)) => r.map_err(|e| remote(self.target, &self.node, e)),
            Ok(_) => Err(protocol_error()),
            Err(e) => Err(to_rpc_error(&e)),
        }
    }
}
