//! The CONTROLLER listener (issue 13): answers peers' Raft RPCs by handing them to this node's
//! `Raft`, and commits commands other nodes forward to it. Runs on the controller thread's
//! current-thread tokio runtime, one task per connection.
//!
//! A connection that sends a frame that is too large or does not decode is closed: the peer
//! reconnects and starts clean, and garbage never reaches openraft.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use tokio::net::{TcpListener, TcpStream};

use super::rpc::{
    Committed, ForwardError, RequestFrame, ResponseFrame, Rpc, RpcReply, read_frame, write_frame,
};
use super::{ControllerNode, MetadataMachine, QuorumTypes};

/// When each node last heartbeated to this node while it led; read by the leader's membership
/// task to fence silent nodes. Shared by the controller thread's tasks and the handle (never
/// by shards).
#[derive(Debug, Default)]
pub struct Liveness {
    seen: Mutex<HashMap<u64, Instant>>,
}

impl Liveness {
    /// Records a heartbeat of `node` now.
    pub fn record(&self, node: u64) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node, Instant::now());
    }

    /// When `node` last heartbeated here, if ever.
    #[must_use]
    pub fn last_seen(&self, node: u64) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node)
            .copied()
    }
}

/// What a connection's answers need besides Raft.
#[derive(Clone)]
pub struct ServeContext {
    /// Bounds a forwarded command's commit.
    pub write_timeout: Duration,
    /// Where heartbeats are recorded.
    pub liveness: Arc<Liveness>,
    /// This node's id, for status answers.
    pub node_id: u64,
}

/// Accepts CONTROLLER connections until the task is dropped (the controller's runtime shuts
/// down).
pub async fn serve<M: MetadataMachine>(
    listener: TcpListener,
    raft: Raft<QuorumTypes<M>>,
    ctx: ServeContext,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let raft = raft.clone();
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, raft, ctx).await {
                        tracing::debug!("controller connection closed: {e}");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("controller listener accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection's requests in order until it closes or misbehaves.
async fn connection<M: MetadataMachine>(
    mut stream: TcpStream,
    raft: Raft<QuorumTypes<M>>,
    ctx: ServeContext,
) -> Result<(), super::rpc::FrameError> {
    stream.set_nodelay(true)?;
    loop {
        let request: RequestFrame<M> = read_frame(&mut stream).await?;
        let reply = answer(&raft, request.rpc, &ctx).await;
        write_frame(
            &mut stream,
            &ResponseFrame {
                id: request.id,
                reply,
            },
        )
        .await?;
    }
}

async fn answer<M: MetadataMachine>(
    raft: &Raft<QuorumTypes<M>>,
    rpc: Rpc<M>,
    ctx: &ServeContext,
) -> RpcReply<M> {
    match rpc {
        Rpc::AppendEntries(req) => RpcReply::AppendEntries(raft.append_entries(req).await),
        Rpc::Vote(req) => RpcReply::Vote(raft.vote(req).await),
        Rpc::InstallSnapshot(req) => RpcReply::InstallSnapshot(raft.install_snapshot(req).await),
        Rpc::Forward(cmd) => RpcReply::Forward(write_local(raft, cmd, ctx.write_timeout).await),
        Rpc::Heartbeat(from) => {
            let within = CONFIRM_WITHIN.min(ctx.write_timeout);
            RpcReply::Heartbeat(heartbeat_local(raft, &ctx.liveness, from, within).await)
        }
        Rpc::Status => RpcReply::Status(super::status::metrics_of(
            ctx.node_id,
            &raft.metrics().borrow(),
        )),
    }
}

/// How long a leader spends confirming its lead for a heartbeat's answer: past it the
/// sender has given up waiting anyway (its request timeout).
const CONFIRM_WITHIN: Duration = Duration::from_secs(1);

/// Records `from`'s heartbeat if this node leads, and answers it once a quorum confirms that
/// it still does (a read-index round, bounded by `timeout`); otherwise names the leader it
/// knows.
///
/// The confirmation is what makes an acknowledged heartbeat a lease: a leader cut off from
/// its quorum still believes it leads (openraft 0.9 has no CheckQuorum step-down), and
/// without it would keep answering heartbeats while the majority elects a new controller that
/// fences the heartbeating node. Confirmed, any newer controller was elected after this
/// heartbeat was sent, so it cannot fence the node before the sender's lease runs out.
///
/// # Errors
/// [`ForwardError::NotLeader`] when this node does not lead, [`ForwardError::TimedOut`] when
/// its quorum did not confirm it in time.
pub async fn heartbeat_local<M: MetadataMachine>(
    raft: &Raft<QuorumTypes<M>>,
    liveness: &Liveness,
    from: u64,
    timeout: Duration,
) -> Result<(), ForwardError> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.state.is_leader() {
        // Counted as alive on receipt, whether or not the confirmation below succeeds: a
        // slow quorum round must not get healthy nodes fenced (it only delays fencing).
        liveness.record(from);
        return match tokio::time::timeout(timeout, raft.get_read_log_id()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ForwardError::Failed(e.to_string())),
            Err(_) => Err(ForwardError::TimedOut),
        };
    }
    let leader = metrics.current_leader.and_then(|id| {
        let node = metrics
            .membership_config
            .membership()
            .get_node(&id)?
            .clone();
        Some((id, node))
    });
    Err(ForwardError::NotLeader { leader })
}

/// Proposes `cmd` to this node's Raft and waits, at most `timeout`, for it to be committed and
/// applied. A leader cut off from its quorum never commits (openraft 0.9 has no CheckQuorum
/// step-down), so the timeout is what turns that into an error.
///
/// # Errors
/// [`ForwardError::NotLeader`] when this node is not the leader (naming the one it knows),
/// [`ForwardError::TimedOut`] past the deadline, [`ForwardError::Failed`] otherwise.
pub async fn write_local<M: MetadataMachine>(
    raft: &Raft<QuorumTypes<M>>,
    cmd: M::Command,
    timeout: Duration,
) -> Result<Committed<M>, ForwardError> {
    match tokio::time::timeout(timeout, raft.client_write(cmd)).await {
        Err(_) => Err(ForwardError::TimedOut),
        Ok(Ok(resp)) => Ok(Committed {
            index: resp.log_id.index,
            reply: resp.data,
        }),
        Ok(Err(e)) => Err(write_error(&e)),
    }
}

fn write_error(e: &RaftError<u64, ClientWriteError<u64, ControllerNode>>) -> ForwardError {
    match e.forward_to_leader::<ControllerNode>() {
        Some(f) => ForwardError::NotLeader {
            leader: f.leader_id.zip(f.leader_node.clone()),
        },
        None => ForwardError::Failed(e.to_string()),
    }
}
