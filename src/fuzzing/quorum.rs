//! Fuzz entries for the parsers of the controller quorum (issue 13): the CONTROLLER listener's
//! frames, the metadata log directory as start-up reads it (segments, vote, committed id,
//! checkpoint) and the cluster image snapshot. Re-exported by [`crate::fuzzing`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::future::block_on;
use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, LogState, Membership, RaftLogReader,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, StoredMembership, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, ReadBuf};
use uuid::Uuid;

use crate::metadata::command::{Applied, MetaCommand, MetaReply, PartitionAssignment};
use crate::metadata::image::{ClusterImage, LogPosition};
use crate::metadata::quorum::{
    Committed, ControllerNode, ForwardError, MAX_FRAME_BYTES, MetaLogStore, MetaStateMachine,
    QuorumTypes, RequestFrame, ResponseFrame, Rpc, RpcReply, read_frame, write_frame,
};

type Types = QuorumTypes<ClusterImage>;

/// File names of the log directory, as `log_store.rs` and `checkpoint.rs` write them. Seeds
/// are dumped from a real store and refuse any other name, so a rename shows up here.
const STATE_FILE: &str = "quorum-state";
const COMMITTED_FILE: &str = "quorum-committed";
/// Any name `checkpoint.rs` parses (`<index:020>-<term:010>.checkpoint`): only the newest
/// checkpoint is read, and its name is not checked against its content.
const CHECKPOINT_FILE: &str = "00000000000000000000-0000000000.checkpoint";

/// Fuzz entry for the CONTROLLER listener's frame reader (`quorum/rpc.rs`): the bytes are what
/// a peer sent on one connection, read as request frames (the server's side) and again as
/// response frames (the client's side), each until the first error. Besides not panicking,
/// the reader must not size its buffer by the announced length: a peer that announces
/// 64 MiB and sends a few bytes must not get a 64 MiB allocation out of us.
pub fn controller_frame(data: &[u8]) {
    read_frames::<RequestFrame<ClusterImage>>(data);
    read_frames::<ResponseFrame<ClusterImage>>(data);
}

fn read_frames<T: DeserializeOwned>(data: &[u8]) {
    let mut conn = Arrivals {
        rest: data,
        largest_offer: 0,
    };
    // Every frame read consumes at least its 4-byte length, so this ends.
    while block_on(read_frame::<_, T>(&mut conn)).is_ok() {}
    // Growing with the bytes read offers at most about twice what arrived; reserving the
    // announced length would offer up to MAX_FRAME_BYTES.
    let bound = 2 * data.len() + 64;
    assert!(
        conn.largest_offer <= bound,
        "the frame reader offered a {}-byte buffer for {} bytes of input",
        conn.largest_offer,
        data.len()
    );
}

/// The fuzz bytes as a socket, recording the largest buffer a read offered: that is what the
/// frame reader had allocated (or reserved) for the bytes still to come.
struct Arrivals<'a> {
    rest: &'a [u8],
    largest_offer: usize,
}

impl AsyncRead for Arrivals<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.largest_offer = this.largest_offer.max(buf.remaining());
        Pin::new(&mut this.rest).poll_read(cx, buf)
    }
}

/// Fuzz entry for the cluster image snapshot (`metadata/image.rs`): decodes the bytes and, when
/// they decode, checks that encoding and decoding again gives the same image.
pub fn metadata_snapshot(data: &[u8]) {
    let Ok(image) = ClusterImage::from_snapshot_bytes(data) else {
        return;
    };
    let bytes = image.to_snapshot_bytes().expect("a decoded image encodes");
    let again = ClusterImage::from_snapshot_bytes(&bytes).expect("an encoded image decodes");
    assert_eq!(again, image, "the snapshot round trip changed the image");
}

/// Fuzz entry for the metadata log's start-up (`quorum/segments.rs`, `log_store.rs`,
/// `durable.rs`, `checkpoint.rs`): the bytes become the files of a node's
/// `__cluster_metadata-0/` (see [`unpack_log_dir`]; frame CRCs are fixed first so mutations
/// reach the decoders behind them), which are then opened as start-up does: the log store,
/// then the state machine. Either may refuse; neither may panic. A log that opens must read
/// back each entry under its own index, and open again to the same log (its cuts are durable).
pub fn metadata_log_segment(data: &[u8]) {
    let dir = super::scratch_dir();
    if fs::create_dir_all(&dir).is_ok() && write_log_dir(&dir, data) {
        if let Ok(log) = MetaLogStore::<Types>::open(&dir) {
            check_recovered_log(&dir, log);
        }
        check_state_machine(&dir);
    }
    let _ = fs::remove_dir_all(&dir);
}

fn write_log_dir(dir: &Path, data: &[u8]) -> bool {
    unpack_log_dir(data).into_iter().all(|(name, mut bytes)| {
        fix_frame_crcs(&mut bytes);
        fs::write(dir.join(name), bytes).is_ok()
    })
}

/// Splits a fuzz input into the files of a metadata log directory: a run of `kind: u8`,
/// `len: u32 LE`, then `len` bytes (fewer where the input ends). `kind % 4` names the file:
/// 0 the vote and purge point, 1 the committed id, 2 a checkpoint, 3 a segment whose first
/// index is the first 8 bytes (LE) and whose content is the rest. See [`pack_log_dir`].
fn unpack_log_dir(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    while let [kind, a, b, c, d, rest @ ..] = data {
        let len = (u32::from_le_bytes([*a, *b, *c, *d]) as usize).min(rest.len());
        let (body, next) = rest.split_at(len);
        data = next;
        let file = match kind % 4 {
            0 => (STATE_FILE.to_owned(), body.to_vec()),
            1 => (COMMITTED_FILE.to_owned(), body.to_vec()),
            2 => (CHECKPOINT_FILE.to_owned(), body.to_vec()),
            _ => {
                let (index, content) = body.split_at(body.len().min(8));
                let mut le = [0u8; 8];
                le[..index.len()].copy_from_slice(index);
                let first = u64::from_le_bytes(le);
                (format!("{first:020}.log"), content.to_vec())
            }
        };
        files.push(file);
    }
    files
}

/// Rewrites the CRC of every quorum frame (`len: u32 LE`, `crc32c(body): u32 LE`, body; see
/// `quorum/durable.rs`) whose length fits, so a fuzzer's mutations of a record are not all
/// stopped by the checksum.
fn fix_frame_crcs(data: &mut [u8]) {
    let mut at = 0usize;
    while data.len() - at >= 8 {
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        let end = at + 8 + len as usize;
        if end > data.len() {
            return;
        }
        let crc = crc32c::crc32c(&data[at + 8..end]);
        data[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// What a log shows openraft: its vote, log state and entries.
type LogView = (Option<Vote<u64>>, LogState<Types>, Vec<Entry<Types>>);

async fn view(log: &mut MetaLogStore<Types>) -> Result<LogView, StorageError<u64>> {
    let vote = log.read_vote().await?;
    let state = log.get_log_state().await?;
    let entries = log.try_get_log_entries(..).await?;
    Ok((vote, state, entries))
}

fn check_recovered_log(dir: &Path, mut log: MetaLogStore<Types>) {
    let recovered = block_on(view(&mut log)).expect("an opened log reads");
    // openraft asks for entries by index and trusts that each answer is the entry asked for.
    for entry in &recovered.2 {
        let at = entry.log_id.index;
        let found = block_on(log.try_get_log_entries(at..=at)).expect("an opened log reads");
        assert!(
            found.as_slice() == std::slice::from_ref(entry),
            "the entry with log id {} is stored under another index",
            entry.log_id
        );
    }
    drop(log);
    let mut reopened = MetaLogStore::<Types>::open(dir).expect("a recovered log opens again");
    let again = block_on(view(&mut reopened)).expect("a reopened log reads");
    assert!(again == recovered, "reopening changed the recovered log");
}

fn check_state_machine(dir: &Path) {
    let Ok(mut machine) = MetaStateMachine::<ClusterImage>::open(dir) else {
        return;
    };
    let (applied, _) = block_on(machine.applied_state()).expect("applied state");
    let current = block_on(machine.get_current_snapshot()).expect("the checkpoint reads again");
    assert_eq!(
        current.and_then(|s| s.meta.last_log_id),
        applied,
        "the state machine did not start at its checkpoint"
    );
}

/// Well-formed CONTROLLER traffic: every request and reply kind framed by `write_frame`, two
/// frames back to back, and frames that announce more bytes than they carry.
pub(super) fn frame_seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0u64..)
        .zip(requests())
        .map(|(id, rpc)| frame(&RequestFrame { id, rpc }))
        .collect();
    out.extend(
        (0u64..)
            .zip(replies())
            .map(|(id, reply)| frame(&ResponseFrame { id, reply })),
    );
    out.push([out[0].clone(), out[1].clone()].concat());
    let announced = MAX_FRAME_BYTES.to_be_bytes();
    out.push([&announced[..], br#"{"id":1,"rpc":"#].concat());
    out.push((MAX_FRAME_BYTES + 1).to_be_bytes().to_vec());
    out
}

fn frame<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(write_frame(&mut out, msg)).expect("a frame encodes into memory");
    out
}

fn requests() -> Vec<Rpc<ClusterImage>> {
    let entries = log_entries();
    let last = entries.last().map(|e| e.log_id);
    let vote = Vote::new_committed(1, 1);
    let snapshot = SnapshotMeta {
        last_log_id: last,
        last_membership: StoredMembership::new(Some(entries[0].log_id), membership()),
        snapshot_id: "00000000000000000008-0000000001".to_owned(),
    };
    vec![
        Rpc::Vote(VoteRequest::new(Vote::new(2, 2), last)),
        Rpc::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: None,
            entries,
            leader_commit: last,
        }),
        Rpc::InstallSnapshot(InstallSnapshotRequest {
            vote,
            meta: snapshot,
            offset: 0,
            data: built_image().to_snapshot_bytes().unwrap_or_default(),
            done: true,
        }),
        Rpc::Forward(commands().swap_remove(2)),
        Rpc::Heartbeat(3),
        Rpc::Status,
    ]
}

fn replies() -> Vec<RpcReply<ClusterImage>> {
    let vote = Vote::new_committed(1, 1);
    let leader = ControllerNode {
        host: "127.0.0.2".to_owned(),
        port: 19093,
    };
    vec![
        RpcReply::Vote(Ok(VoteResponse::new(vote, Some(log_id(1, 8)), true))),
        RpcReply::AppendEntries(Ok(AppendEntriesResponse::Success)),
        RpcReply::AppendEntries(Ok(AppendEntriesResponse::HigherVote(Vote::new(3, 2)))),
        RpcReply::AppendEntries(Err(RaftError::Fatal(Fatal::Stopped))),
        RpcReply::InstallSnapshot(Ok(InstallSnapshotResponse { vote })),
        RpcReply::Forward(Ok(Committed {
            index: 7,
            reply: MetaReply::Ok(Applied::ProducerIds {
                first_id: 0,
                count: 1000,
            }),
        })),
        RpcReply::Forward(Err(ForwardError::NotLeader {
            leader: Some((2, leader.clone())),
        })),
        RpcReply::Heartbeat(Ok(())),
        RpcReply::Status(crate::metadata::quorum::QuorumMetrics {
            node_id: 2,
            state: openraft::ServerState::Leader,
            leader: Some(2),
            term: 3,
            last_log_index: Some(9),
            applied_index: Some(9),
            snapshot_index: None,
            purged_index: None,
            matched: [(1, Some(9)), (2, None)].into(),
            voters: [(2, leader)].into(),
            committed_index: Some(9),
        }),
    ]
}

/// Snapshots of the empty image and of one built by [`commands`].
pub(super) fn snapshot_seeds() -> Vec<Vec<u8>> {
    [ClusterImage::new(), built_image()]
        .iter()
        .map(|image| image.to_snapshot_bytes().unwrap_or_default())
        .collect()
}

/// Directories written by a real log store and state machine (small segments, so several
/// files): after appends, then after a snapshot and a purge.
pub(super) fn log_dir_seeds() -> Vec<Vec<u8>> {
    let dir = super::scratch_dir();
    let seeds = block_on(write_real_log(&dir));
    let _ = fs::remove_dir_all(&dir);
    seeds
}

async fn write_real_log(dir: &Path) -> Vec<Vec<u8>> {
    const FAILED: &str = "the seed log is written";
    let entries = log_entries();
    let mut log = MetaLogStore::<Types>::open_with(dir, 512).expect(FAILED);
    let last = entries.last().map(|e| e.log_id);
    log.save_vote(&Vote::new_committed(1, 1))
        .await
        .expect(FAILED);
    log.blocking_append(entries.clone()).await.expect(FAILED);
    log.save_committed(last).await.expect(FAILED);
    let mut seeds = vec![pack_log_dir(dir)];
    let mut machine = MetaStateMachine::<ClusterImage>::open(dir).expect(FAILED);
    machine.apply(entries.clone()).await.expect(FAILED);
    let mut builder = machine.get_snapshot_builder().await;
    builder.build_snapshot().await.expect(FAILED);
    log.purge(entries[4].log_id).await.expect(FAILED);
    seeds.push(pack_log_dir(dir));
    seeds
}

/// The files of `dir` in the layout [`unpack_log_dir`] reads.
fn pack_log_dir(dir: &Path) -> Vec<u8> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read the seed log directory")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let content = fs::read(dir.join(&name)).expect("read a seed log file");
        let (kind, prefix) = match name.as_str() {
            STATE_FILE => (0, Vec::new()),
            COMMITTED_FILE => (1, Vec::new()),
            n if n.ends_with(".checkpoint") => (2, Vec::new()),
            n => {
                let first = n.strip_suffix(".log").and_then(|i| i.parse::<u64>().ok());
                let first = first.unwrap_or_else(|| panic!("unknown file {n} in the log dir"));
                (3, first.to_le_bytes().to_vec())
            }
        };
        let body = [prefix, content].concat();
        out.push(kind);
        out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn membership() -> Membership<u64, ControllerNode> {
    let nodes: BTreeMap<u64, ControllerNode> = (1..=3)
        .map(|id| {
            let node = ControllerNode {
                host: format!("127.0.0.{id}"),
                port: 19093,
            };
            (id, node)
        })
        .collect();
    let voters: BTreeSet<u64> = nodes.keys().copied().collect();
    Membership::new(vec![voters], nodes)
}

/// A log as a new quorum writes it: its membership at index 0, the leader's blank entry, then
/// [`commands`].
fn log_entries() -> Vec<Entry<Types>> {
    let payloads = [EntryPayload::Membership(membership()), EntryPayload::Blank]
        .into_iter()
        .chain(commands().into_iter().map(EntryPayload::Normal));
    (0u64..)
        .zip(payloads)
        .map(|(index, payload)| Entry {
            log_id: log_id(1, index),
            payload,
        })
        .collect()
}

/// [`commands`] applied to an empty image, as from log index 2 on.
fn built_image() -> ClusterImage {
    let mut image = ClusterImage::new();
    for (index, cmd) in (2u64..).zip(commands()) {
        image.apply(&cmd, LogPosition { index, term: 1 });
    }
    image
}

/// One command of each kind that matters, each accepted when applied in order from index 2.
fn commands() -> Vec<MetaCommand> {
    let topic_id = Uuid::from_u128(0x5eed);
    vec![
        MetaCommand::RegisterBroker {
            node_id: 1,
            incarnation: Uuid::from_u128(1),
            endpoints: BTreeMap::from([("PLAINTEXT".to_owned(), "127.0.0.1:9092".to_owned())]),
            shards: 2,
            rack: Some("r1".to_owned()),
        },
        MetaCommand::UnfenceBroker {
            node_id: 1,
            broker_epoch: 2,
        },
        MetaCommand::CreateTopic {
            name: "orders".to_owned(),
            topic_id,
            partitions: vec![
                PartitionAssignment {
                    replicas: vec![1000],
                },
                PartitionAssignment {
                    replicas: vec![1001],
                },
            ],
            configs: BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]),
        },
        MetaCommand::PartitionChange {
            topic_id,
            partition: 0,
            leader: 1000,
            leader_epoch: 1,
            isr: vec![1000],
            partition_epoch: 0,
        },
        MetaCommand::AlterBrokerConfigs {
            set: BTreeMap::from([("log.retention.ms".to_owned(), "1000".to_owned())]),
            delete: BTreeSet::new(),
        },
        MetaCommand::AllocateProducerIds {
            node_id: 1,
            count: 1000,
        },
    ]
}
