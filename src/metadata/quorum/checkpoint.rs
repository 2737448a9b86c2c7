//! Snapshot files of the metadata quorum: `<index:020>-<term:010>.checkpoint` in
//! `__cluster_metadata-0/`, one frame (`len`, `crc32c`) holding the snapshot's openraft meta
//! (JSON) and the machine's bytes. Written atomically (tmp, fsync, rename, fsync dir); only the
//! newest is kept. Blocking calls: run them on the flusher thread.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::durable::{read_framed, sync_dir, write_atomic};
use super::error::QuorumStoreError;

const SUFFIX: &str = ".checkpoint";

/// A snapshot as stored: openraft's meta and the machine's serialized state.
#[derive(Debug, Clone)]
pub(super) struct Checkpoint<Meta> {
    /// Last included log id, last membership and snapshot id.
    pub meta: Meta,
    /// [`MetadataMachine::to_snapshot`](super::MetadataMachine::to_snapshot) bytes.
    pub data: Vec<u8>,
}

/// The file stem of the checkpoint ending at (`index`, `term`): also its snapshot id.
pub(super) fn stem(index: u64, term: u64) -> String {
    format!("{index:020}-{term:010}")
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let (index, term) = name.strip_suffix(SUFFIX)?.split_once('-')?;
    if index.len() != 20 || term.len() != 10 {
        return None;
    }
    Some((index.parse().ok()?, term.parse().ok()?))
}

/// Where a checkpoint ends: (last index, its term); orders checkpoints oldest first.
type Position = (u64, u64);

/// The checkpoints in `dir`, as (position, path), oldest first.
fn list(dir: &Path) -> Result<Vec<(Position, PathBuf)>, QuorumStoreError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(QuorumStoreError::io("read dir", dir))? {
        let entry = entry.map_err(QuorumStoreError::io("read dir", dir))?;
        if let Some(key) = entry.file_name().to_str().and_then(parse_name) {
            found.push((key, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Writes the checkpoint for (`index`, `term`) durably, then removes older ones.
pub(super) fn write<Meta: Serialize>(
    dir: &Path,
    index: u64,
    term: u64,
    checkpoint: &Checkpoint<Meta>,
) -> Result<(), QuorumStoreError> {
    let path = dir.join(format!("{}{SUFFIX}", stem(index, term)));
    let meta = serde_json::to_vec(&checkpoint.meta).map_err(|source| QuorumStoreError::Encode {
        what: "snapshot meta",
        source,
    })?;
    let meta_len =
        u32::try_from(meta.len()).map_err(|_| QuorumStoreError::TooLarge { len: meta.len() })?;
    let mut body = Vec::with_capacity(4 + meta.len() + checkpoint.data.len());
    body.extend_from_slice(&meta_len.to_le_bytes());
    body.extend_from_slice(&meta);
    body.extend_from_slice(&checkpoint.data);
    write_atomic(&path, &body, true)?;
    let mut removed = false;
    for (key, old) in list(dir)? {
        if key < (index, term) {
            fs::remove_file(&old).map_err(QuorumStoreError::io("remove", &old))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads the newest checkpoint in `dir`, if any. A damaged newest checkpoint is an error, not
/// a reason to fall back: it was fsynced before the older ones were removed.
pub(super) fn read_latest<Meta: DeserializeOwned>(
    dir: &Path,
) -> Result<Option<Checkpoint<Meta>>, QuorumStoreError> {
    let Some((_, path)) = list(dir)?.pop() else {
        return Ok(None);
    };
    let Some(body) = read_framed(&path)? else {
        return Ok(None);
    };
    let corrupt = |reason: &str| QuorumStoreError::Corrupt {
        path: path.clone(),
        offset: 0,
        reason: reason.to_owned(),
    };
    let len_bytes: [u8; 4] = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("shorter than its meta length"))?;
    let meta_end = 4 + u32::from_le_bytes(len_bytes) as usize;
    let meta_bytes = body
        .get(4..meta_end)
        .ok_or_else(|| corrupt("meta cut short"))?;
    let meta = serde_json::from_slice(meta_bytes).map_err(|source| QuorumStoreError::Decode {
        path: path.clone(),
        what: "snapshot meta",
        source,
    })?;
    Ok(Some(Checkpoint {
        meta,
        data: body[meta_end..].to_vec(),
    }))
}
