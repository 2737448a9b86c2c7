//! The durable state of one share group on one partition: a small append-only file in the
//! partition's directory, `share-<group as hex>.state`, where every change a restart must see
//! (acknowledgements, releases, archiving) appends a whole snapshot. Each snapshot carries a
//! version and a CRC32C, so loading keeps the newest intact one whatever order the appends
//! landed in and whatever a crash tore. When the file passes [`COMPACT_AT`] it is rewritten
//! with the newest snapshot alone (write, then rename over).
//!
//! Encoding and decoding are pure; the file work runs on glommio's blocking pool, called from
//! the partition's shard, so a write never stalls it. Like the log without a flush policy,
//! a snapshot survives a crash of the process (it is in the page cache before the answer
//! leaves), not a power loss.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::partition_state::{Snapshot, StateRange};
use crate::coordinator::group::share::config::MAX_PARTITION_RECORD_LOCKS;

/// Size past which the file is rewritten with its newest snapshot only.
pub const COMPACT_AT: u64 = 1 << 20;

/// Fixed part of a snapshot record after its length: CRC, version, start offset, run count.
const HEADER: usize = 4 + 8 + 8 + 4;
/// One run: first, last, state, deliveries.
const RANGE: usize = 8 + 8 + 1 + 2;

/// The state file of `group` in a partition directory.
pub fn path_in(partition_dir: &Path, group: &str) -> PathBuf {
    let hex: String = group.bytes().map(|b| format!("{b:02x}")).collect();
    partition_dir.join(format!("share-{hex}.state"))
}

/// One snapshot as a record: length, CRC32C of the rest, version, start, runs.
pub fn encode(version: u64, snapshot: &Snapshot) -> Vec<u8> {
    let body_len = HEADER + RANGE * snapshot.ranges.len();
    let mut out = Vec::with_capacity(4 + body_len);
    out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&snapshot.start.to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(snapshot.ranges.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for r in &snapshot.ranges {
        out.extend_from_slice(&r.first.to_be_bytes());
        out.extend_from_slice(&r.last.to_be_bytes());
        out.push(r.state);
        out.extend_from_slice(&r.deliveries.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The newest intact snapshot of a file's bytes; a torn or corrupt record ends the scan.
pub fn decode_newest(mut bytes: &[u8]) -> Option<(u64, Snapshot)> {
    let mut newest: Option<(u64, Snapshot)> = None;
    while let Some((version, snapshot, rest)) = decode_one(bytes) {
        if newest.as_ref().is_none_or(|(v, _)| version >= *v) {
            newest = Some((version, snapshot));
        }
        bytes = rest;
    }
    newest
}

fn decode_one(bytes: &[u8]) -> Option<(u64, Snapshot, &[u8])> {
    let len = usize::try_from(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?)).ok()?;
    let body = bytes.get(4..4 + len)?;
    if len < HEADER || !(len - HEADER).is_multiple_of(RANGE) {
        return None;
    }
    let crc = u32::from_be_bytes(body[..4].try_into().ok()?);
    if crc32c::crc32c(&body[4..]) != crc {
        return None;
    }
    let version = u64::from_be_bytes(body[4..12].try_into().ok()?);
    let start = i64::from_be_bytes(body[12..20].try_into().ok()?);
    let count = usize::try_from(u32::from_be_bytes(body[20..24].try_into().ok()?)).ok()?;
    if count != (len - HEADER) / RANGE {
        return None;
    }
    let ranges = body[HEADER..]
        .chunks_exact(RANGE)
        .map(|c| StateRange {
            first: i64::from_be_bytes(c[..8].try_into().unwrap_or_default()),
            last: i64::from_be_bytes(c[8..16].try_into().unwrap_or_default()),
            state: c[16],
            deliveries: u16::from_be_bytes([c[17], c[18]]),
        })
        .collect();
    Some((version, Snapshot { start, ranges }, &bytes[4 + len..]))
}

/// Reads the newest snapshot of `path` on the blocking pool; `None` when there is no file
/// (or no intact record in it).
pub async fn load(path: PathBuf) -> io::Result<Option<(u64, Snapshot)>> {
    glommio::executor()
        .spawn_blocking(move || match read_bounded(&path) {
            Ok(bytes) => Ok(decode_newest(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
}

/// The file's bytes, refused before any allocation when it is larger than a state file can
/// grow ([`COMPACT_AT`] plus one record of the largest window), so a stray file cannot make
/// the broker read gigabytes.
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    const MAX_RECORD: u64 = (4 + HEADER + RANGE * MAX_PARTITION_RECORD_LOCKS) as u64;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > COMPACT_AT + MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is {len} bytes, larger than a share state file grows",
                path.display()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(bytes)
}

/// Appends `record` to `path` on the blocking pool, rewriting the file with `record` alone
/// once it has grown past [`COMPACT_AT`]. The caller keeps one write per file in flight.
pub async fn append(path: PathBuf, record: Vec<u8>) -> io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || append_blocking(&path, &record))
        .await
}

/// Replaces `path` with `record` alone (write, then rename over), on the blocking pool.
pub async fn replace(path: PathBuf, record: Vec<u8>) -> io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || {
            let tmp = path.with_extension("state.tmp");
            std::fs::write(&tmp, &record)?;
            std::fs::rename(&tmp, &path)
        })
        .await
}

/// Removes `path` (gone already is fine), on the blocking pool.
pub async fn remove(path: PathBuf) -> io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
}

fn append_blocking(path: &Path, record: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if file.metadata()?.len() + record.len() as u64 <= COMPACT_AT {
        return file.write_all(record);
    }
    drop(file);
    let tmp = path.with_extension("state.tmp");
    std::fs::write(&tmp, record)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(start: i64) -> Snapshot {
        Snapshot {
            start,
            ranges: vec![
                StateRange {
                    first: start,
                    last: start + 2,
                    state: 0,
                    deliveries: 1,
                },
                StateRange {
                    first: start + 3,
                    last: start + 3,
                    state: 2,
                    deliveries: 1,
                },
            ],
        }
    }

    #[test]
    fn the_newest_intact_snapshot_wins_whatever_the_order_and_a_torn_tail_is_ignored() {
        let mut file = encode(2, &snapshot(10));
        file.extend(encode(1, &snapshot(5)));
        let torn = encode(3, &snapshot(20));
        file.extend(&torn[..torn.len() - 1]);
        assert_eq!(decode_newest(&file), Some((2, snapshot(10))));
        let mut corrupt = encode(4, &snapshot(30));
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert_eq!(decode_newest(&corrupt), None);
    }

    #[test]
    fn a_group_name_of_any_bytes_makes_a_plain_file_name() {
        let p = path_in(Path::new("/d"), "a/../b");
        assert_eq!(p, Path::new("/d/share-612f2e2e2f62.state"));
    }
}
