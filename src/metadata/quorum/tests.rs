//! Tests of the quorum storage: openraft's own storage suite against the file-backed log and
//! state machine, then reopen, torn-tail and snapshot cases, all with a small key-value machine
//! so they do not depend on the real metadata image.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite, log_id};
use openraft::{
    Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder, StorageError, Vote,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use super::{MetaLogStore, MetaStateMachine, MetadataMachine, QuorumTypes, SnapshotError};

/// A tiny machine: a key-value map, plus where the last command was applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Kv {
    pub(super) map: BTreeMap<String, String>,
    last: Option<(u64, u64)>,
}

impl MetadataMachine for Kv {
    type Command = (String, String);
    /// The previous value of the key.
    type Reply = Option<String>;

    fn apply(&mut self, (key, value): &(String, String), index: u64, term: u64) -> Option<String> {
        self.last = Some((index, term));
        self.map.insert(key.clone(), value.clone())
    }

    fn to_snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a map of strings encodes")
    }

    fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        serde_json::from_slice(bytes).map_err(|e| SnapshotError {
            reason: e.to_string(),
        })
    }
}

type C = QuorumTypes<Kv>;
type Log = MetaLogStore<C>;
type Sm = MetaStateMachine<Kv>;

struct TempStores;

impl StoreBuilder<C, Log, Sm, TempDir> for TempStores {
    async fn build(&self) -> Result<(TempDir, Log, Sm), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        // Small segments, so the suite's truncates and purges cross segment boundaries.
        let log = Log::open_with(dir.path(), 256).expect("open log");
        let sm = Sm::open(dir.path()).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(TempStores).expect("openraft storage suite");
}

fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(fut)
}

fn set(term: u64, index: u64, key: &str, value: &str) -> Entry<C> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal((key.to_owned(), value.to_owned())),
    }
}

fn membership(term: u64, index: u64) -> Entry<C> {
    let voters = BTreeSet::from([1, 2, 3]);
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], None)),
    }
}

/// Appends and waits until the flusher reports the entries durable.
async fn append(log: &mut Log, entries: Vec<Entry<C>>) {
    log.blocking_append(entries)
        .await
        .expect("append and flush");
}

async fn all_ids(log: &mut Log) -> Vec<LogId<u64>> {
    log.try_get_log_entries(..)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.log_id)
        .collect()
}

fn files_ending(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    files
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files_ending(dir, "log")
}

#[test]
fn reopen_after_writes_gives_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries: Vec<_> = (0..20).map(|i| set(1, i, &format!("k{i}"), "v")).collect();
    let vote = Vote::new_committed(2, 1);
    let before = block_on(async {
        let mut log = Log::open_with(dir.path(), 200).expect("open");
        append(&mut log, entries).await;
        log.save_vote(&vote).await.expect("vote");
        log.truncate(log_id(1, 1, 15)).await.expect("truncate");
        append(&mut log, vec![set(2, 15, "k15", "w")]).await;
        log.purge(log_id(1, 1, 4)).await.expect("purge");
        log.save_committed(Some(log_id(2, 1, 15)))
            .await
            .expect("committed");
        (
            log.get_log_state().await.expect("state"),
            all_ids(&mut log).await,
        )
    });
    let segments = segment_files(dir.path());
    assert!(segments.len() > 1, "small segments roll");
    assert!(
        !segments[0].ends_with(format!("{:020}.log", 0)),
        "the segment holding only purged entries is removed"
    );
    block_on(async {
        let mut log = Log::open_with(dir.path(), 200).expect("reopen");
        let state = log.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, before.0.last_purged_log_id);
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 15)));
        assert_eq!(all_ids(&mut log).await, before.1);
        assert_eq!(before.1.first().map(|id| id.index), Some(5));
        assert_eq!(log.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(
            log.read_committed().await.expect("committed"),
            Some(log_id(2, 1, 15))
        );
    });
}

#[test]
fn torn_last_entry_is_cut_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let mut log = Log::open(dir.path()).expect("open");
        append(
            &mut log,
            (0..5).map(|i| set(1, i, "k", &i.to_string())).collect(),
        )
        .await;
    });
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    let len = std::fs::metadata(&files[0]).expect("stat").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .expect("open segment");
    file.set_len(len - 3).expect("tear the last record");
    drop(file);
    block_on(async {
        let mut log = Log::open(dir.path()).expect("reopen cuts the torn tail");
        let ids: Vec<u64> = all_ids(&mut log).await.iter().map(|id| id.index).collect();
        assert_eq!(ids, vec![0, 1, 2, 3]);
        // The log goes on from the cut: index 4 again, then 5.
        append(
            &mut log,
            vec![set(2, 4, "k", "again"), set(2, 5, "k", "next")],
        )
        .await;
    });
    block_on(async {
        let mut log = Log::open(dir.path()).expect("reopen");
        let last = log.get_log_state().await.expect("state").last_log_id;
        assert_eq!(last, Some(log_id(2, 1, 5)));
        assert_eq!(all_ids(&mut log).await.len(), 6);
    });
}

#[test]
fn damage_before_the_tail_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let mut log = Log::open_with(dir.path(), 100).expect("open");
        append(&mut log, (0..10).map(|i| set(1, i, "k", "v")).collect()).await;
    });
    let first = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&first).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&first, bytes).expect("write");
    let err = Log::open_with(dir.path(), 100).expect_err("a closed segment is not cut silently");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn apply_publishes_and_snapshot_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let mut sm = Sm::open(dir.path()).expect("open");
        let mut rx = sm.subscribe();
        let replies = sm
            .apply(vec![
                membership(1, 1),
                set(1, 2, "a", "1"),
                set(1, 3, "a", "2"),
            ])
            .await
            .expect("apply");
        assert_eq!(replies, vec![None, None, Some("1".to_owned())]);
        assert!(rx.has_changed().expect("sender alive"));
        let published: Arc<Kv> = rx.borrow_and_update().clone();
        assert_eq!(published.map.get("a").map(String::as_str), Some("2"));
        assert_eq!(published.last, Some((3, 1)));
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 1, 3)));
        sm.apply(vec![set(1, 4, "b", "x")])
            .await
            .expect("apply after snapshot");
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build again");
    });
    assert_eq!(
        files_ending(dir.path(), "checkpoint").len(),
        1,
        "only the newest checkpoint is kept"
    );
    block_on(async {
        let mut sm = Sm::open(dir.path()).expect("reopen");
        let (applied, mem) = sm.applied_state().await.expect("applied");
        assert_eq!(applied, Some(log_id(1, 1, 4)));
        assert_eq!(mem.log_id(), &Some(log_id(1, 1, 1)));
        assert_eq!(sm.machine().map.get("b").map(String::as_str), Some("x"));
        assert_eq!(sm.subscribe().borrow().map.len(), 2);
    });
}

#[test]
fn installed_snapshot_survives_reopen() {
    let leader = tempfile::tempdir().expect("tempdir");
    let follower = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let mut sm = Sm::open(leader.path()).expect("open leader");
        sm.apply(vec![membership(3, 7), set(3, 8, "topic", "t1")])
            .await
            .expect("apply");
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        let mut other = Sm::open(follower.path()).expect("open follower");
        let rx = other.subscribe();
        other
            .install_snapshot(&snap.meta, snap.snapshot)
            .await
            .expect("install");
        assert_eq!(rx.borrow().map.get("topic").map(String::as_str), Some("t1"));
    });
    block_on(async {
        let mut sm = Sm::open(follower.path()).expect("reopen follower");
        let (applied, _) = sm.applied_state().await.expect("applied");
        assert_eq!(applied, Some(log_id(3, 1, 8)));
        let current = sm
            .get_current_snapshot()
            .await
            .expect("read")
            .expect("a snapshot");
        assert_eq!(current.meta.last_log_id, Some(log_id(3, 1, 8)));
        assert_eq!(sm.machine().map.len(), 1);
    });
}

#[test]
fn undecodable_snapshot_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let mut sm = Sm::open(dir.path()).expect("open");
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        let garbage = Box::new(std::io::Cursor::new(b"not json".to_vec()));
        assert!(sm.install_snapshot(&snap.meta, garbage).await.is_err());
    });
}

/// Writes one segment file starting at `first` holding `records` as (stored index, entry).
fn write_segment(dir: &Path, first: u64, records: &[(u64, Entry<C>)]) {
    let mut bytes = Vec::new();
    for (index, entry) in records {
        let body = [
            index.to_le_bytes().to_vec(),
            serde_json::to_vec(entry).expect("encode"),
        ]
        .concat();
        super::durable::put_frame(&mut bytes, &body).expect("frame");
    }
    std::fs::write(dir.join(format!("{first:020}.log")), bytes).expect("write segment");
}

#[test]
fn an_entry_naming_another_index_than_its_record_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(
        dir.path(),
        0,
        &[(0, set(1, 0, "k", "v")), (1, set(1, 8, "k", "w"))],
    );
    let err = Log::open(dir.path()).expect_err("refused");
    assert!(err.to_string().contains("stored as record 1"), "{err}");
}

#[test]
fn indexes_at_the_end_of_u64_are_refused_or_purged_without_overflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(
        dir.path(),
        u64::MAX,
        &[(u64::MAX, set(1, u64::MAX, "k", "v"))],
    );
    let err = Log::open(dir.path()).expect_err("no index follows u64::MAX");
    assert!(err.to_string().contains("leaves no next index"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), 0, &[(0, set(1, 0, "k", "v"))]);
    let state = concat!(
        r#"{"vote":null,"last_purged":"#,
        r#"{"leader_id":{"term":1,"node_id":1},"index":18446744073709551615}}"#
    );
    let state_file = dir.path().join("quorum-state");
    super::durable::write_atomic(&state_file, state.as_bytes(), false).expect("state");
    let mut log = Log::open(dir.path()).expect("everything is purged");
    assert!(block_on(all_ids(&mut log)).is_empty());
}
