//! The wire format of the CONTROLLER listener (issue 13): the requests one controller sends
//! another, their replies, and the frame codec both sides use. Runs on the controller thread's
//! tokio runtime (client side in `network.rs`, server side in `server.rs`).
//!
//! A frame is a big-endian `u32` length followed by that many bytes of JSON. JSON rather than a
//! binary encoding because openraft's types already derive serde and metadata traffic is tiny;
//! the length bound keeps a broken or hostile peer from making us allocate without limit.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ControllerNode, MetadataMachine, QuorumTypes};

/// Largest frame either side accepts, in bytes (64 MiB): far above any metadata snapshot chunk.
pub const MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;

/// One request on a CONTROLLER connection; `id` is echoed in the reply so a client can tell a
/// late reply to an abandoned request from the one it waits for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RequestFrame<M: MetadataMachine> {
    /// Sender-chosen id, unique per connection.
    pub id: u64,
    /// What is asked.
    pub rpc: Rpc<M>,
}

/// The RPCs of the CONTROLLER listener.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Rpc<M: MetadataMachine> {
    /// Raft log replication (and heartbeat) from the leader.
    AppendEntries(AppendEntriesRequest<QuorumTypes<M>>),
    /// A candidate asks for a vote.
    Vote(VoteRequest<u64>),
    /// One chunk of a snapshot, for a follower whose next entries the leader has purged.
    InstallSnapshot(InstallSnapshotRequest<QuorumTypes<M>>),
    /// A follower forwards a client's metadata command to the node it believes is the leader.
    Forward(M::Command),
    /// A node says it is alive (Kafka's BrokerHeartbeat), to the node it believes leads.
    Heartbeat(u64),
    /// Asks the receiver for the quorum's state as it sees it (DescribeQuorum on a follower).
    Status,
}

/// The reply to a [`RequestFrame`] with the same `id`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ResponseFrame<M: MetadataMachine> {
    /// The request's id.
    pub id: u64,
    /// The answer; its variant matches the request's.
    pub reply: RpcReply<M>,
}

/// The answers, one variant per [`Rpc`]; Raft errors travel as openraft's own (serde) types.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RpcReply<M: MetadataMachine> {
    /// Answer to [`Rpc::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// Answer to [`Rpc::Vote`].
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// Answer to [`Rpc::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// Answer to [`Rpc::Forward`].
    Forward(Result<Committed<M>, ForwardError>),
    /// Answer to [`Rpc::Heartbeat`]: recorded, or not the leader.
    Heartbeat(Result<(), ForwardError>),
    /// Answer to [`Rpc::Status`].
    Status(super::status::QuorumMetrics),
}

/// A command committed and applied by the quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Committed<M: MetadataMachine> {
    /// Raft log index of the command: once a node's image has applied this index, it shows the
    /// command's effect.
    pub index: u64,
    /// What applying it answered.
    pub reply: M::Reply,
}

/// Why a forwarded command was not committed by the node it was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    /// The receiver is not the leader (any more); it names the leader it knows, if any.
    #[error("not the leader; leader is {leader:?}")]
    NotLeader {
        /// The leader's node id and CONTROLLER endpoint, if the receiver knows one.
        leader: Option<(u64, ControllerNode)>,
    },
    /// The write did not commit in the receiver's deadline (e.g. it lost its quorum).
    #[error("forwarded write timed out on the leader")]
    TimedOut,
    /// The receiver's Raft failed (shutting down, storage error), in words.
    #[error("forwarded write failed: {0}")]
    Failed(String),
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed.
    #[error("controller connection I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame over [`MAX_FRAME_BYTES`].
    #[error("controller frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(u64),
    /// The frame's bytes are not the expected JSON message.
    #[error("controller frame does not decode: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `msg` as one length-prefixed JSON frame.
///
/// # Errors
/// [`FrameError`] when the message does not encode, is too large, or the socket fails.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWriteExt + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME_BYTES)
        .ok_or(FrameError::TooLarge(body.len() as u64))?;
    // One buffer, one write: a frame is never interleaved with another on the socket.
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one length-prefixed JSON frame.
///
/// # Errors
/// [`FrameError`] on a socket failure or end of stream, an oversized length, or bad JSON.
pub async fn read_frame<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: AsyncReadExt + Unpin,
    T: DeserializeOwned,
{
    let len = r.read_u32().await?;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(u64::from(len)));
    }
    // Grow with the bytes that arrive rather than reserving what the peer announced, so a
    // connection that claims 64 MiB and sends nothing holds no memory for it.
    let mut body = Vec::new();
    r.take(u64::from(len)).read_to_end(&mut body).await?;
    if body.len() != len as usize {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_lengths_are_refused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (mut a, mut b) = tokio::io::duplex(1024);
            let sent = ForwardError::NotLeader {
                leader: Some((
                    2,
                    ControllerNode {
                        host: "127.0.0.2".to_owned(),
                        port: 19093,
                    },
                )),
            };
            write_frame(&mut a, &sent).await.expect("write");
            let got: ForwardError = read_frame(&mut b).await.expect("read");
            assert_eq!(got, sent);
            a.write_all(&(MAX_FRAME_BYTES + 1).to_be_bytes())
                .await
                .expect("write");
            let err = read_frame::<_, ForwardError>(&mut b)
                .await
                .expect_err("refused");
            assert!(matches!(err, FrameError::TooLarge(_)), "{err}");
        });
    }
}
