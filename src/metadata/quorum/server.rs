//! The CONTROLLER listener (issue 13): answers peers' Raft RPCs by handing them to this node's
//! `Raft`, and commits commands other nodes forward to it. Runs on the controller thread's
//! current-thread tokio runtime, one task per connection.
//!
//! A connection that sends a frame that is too large or does not decode is closed: the peer
//! reconnects and starts clean, and garbage never reaches openraft.

use std::time::Duration;

use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use tokio::net::{TcpListener, TcpStream};

use super::rpc::{
    Committed, ForwardError, RequestFrame, ResponseFrame, Rpc, RpcReply, read_frame, write_frame,
};
use super::{ControllerNode, MetadataMachine, QuorumTypes};

/// Accepts CONTROLLER connections until the task is dropped (the controller's runtime shuts
/// down). `write_timeout` bounds a forwarded command's commit.
pub async fn serve<M: MetadataMachine>(
    listener: TcpListener,
    raft: Raft<QuorumTypes<M>>,
    write_timeout: Duration,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let raft = raft.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, raft, write_timeout).await {
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
    write_timeout: Duration,
) -> Result<(), super::rpc::FrameError> {
    stream.set_nodelay(true)?;
    loop {
        let request: RequestFrame<M> = read_frame(&mut stream).await?;
        let reply = answer(&raft, request.rpc, write_timeout).await;
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
    write_timeout: Duration,
) -> RpcReply<M> {
    match rpc {
        Rpc::AppendEntries(req) => RpcReply::AppendEntries(raft.append_entries(req).await),
        Rpc::Vote(req) => RpcReply::Vote(raft.vote(req).await),
        Rpc::InstallSnapshot(req) => RpcReply::InstallSnapshot(raft.install_snapshot(req).await),
        Rpc::Forward(cmd) => RpcReply::Forward(write_local(raft, cmd, write_timeout).await),
    }
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
