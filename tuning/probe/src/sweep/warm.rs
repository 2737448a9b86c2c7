//! Memory-state honesty: this kind of VM hands freed memory back to the host (free page
//! reporting through virtio_balloon), and touching it again costs about ten times a warm page.
//! So before each step the lab writes and deletes a file at least as large as the step's data,
//! then syncs, and records what it did. Runs on the lab's main thread.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{LabError, Result};
use crate::host;

/// How much to warm for a step expected to move `expected_bytes`: that, capped at half of
/// MemAvailable and a quarter of the free disk, and at least 64 MiB.
pub fn warm_size(expected_bytes: u64, dir: &Path) -> u64 {
    let avail = host::memory_counters().mem_available_kib * 1024;
    let disk = host::free_bytes(dir).unwrap_or(u64::MAX);
    expected_bytes.max(64 << 20).min(avail / 2).min(disk / 4)
}

/// Writes `bytes` into a new file in `dir`, deletes it (its dirty pages are dropped, not
/// written back) and syncs, so the step starts on touched memory with nothing to write back.
/// Returns the `mem_state` text for the row.
pub fn warm(dir: &Path, bytes: u64) -> Result<String> {
    let path = super::broker::fresh_dir(dir)?.join("warm.bin");
    let result = write_file(&path, bytes);
    let _ = std::fs::remove_file(&path);
    if let Some(parent) = path.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    result.map_err(LabError::io("warming memory with", &path))?;
    sync_all();
    Ok(format!(
        "warm: {} MiB written and deleted, then sync",
        bytes >> 20
    ))
}

fn write_file(path: &Path, bytes: u64) -> std::io::Result<()> {
    let mut f = File::create_new(path)?;
    let chunk = vec![0x5au8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// sync(2): the previous step's dirty pages must not be written back during this one.
pub fn sync_all() {
    // SAFETY: sync has no arguments and cannot fail.
    unsafe { libc::sync() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let state = warm(dir.path(), 2 << 20).unwrap();
        assert!(state.starts_with("warm: 2 MiB"), "{state}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(warm_size(1, dir.path()) >= 1);
    }
}
