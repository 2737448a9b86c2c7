//! The data directory lock: `<data_dir>/.lock`, held with `flock` for the life of the
//! process so a second broker on the same directory refuses to start. Taken on the main
//! thread before any shard starts.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why the data directory could not be locked; either one stops start-up.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// `flock` on `.lock` failed, normally because another process holds it (any failure of the
    /// call is reported this way).
    #[error(
        "data directory {dir} is in use by another Sluice process{holder}, which holds {lock}; stop it or pick another --data-dir"
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// Path of the lock file, for the message.
        lock: String,
        /// `" (pid N)"` from the lock file's contents, or empty when it names no pid.
        holder: String,
    },
    /// The directory or its `.lock` file could not be created or opened.
    #[error("cannot open lock file {path}: {source}")]
    Io {
        /// The lock file's path.
        path: PathBuf,
        /// The error from creating the directory or opening the file.
        source: std::io::Error,
    },
}

/// Holds the lock until dropped (the kernel also releases it if the process dies).
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `dir` if needed, takes an exclusive, non-blocking `flock` on `dir/.lock` and
    /// writes this process's pid into it. The lock lasts until the returned value is dropped.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(".lock");
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        // SAFETY: flock on a valid, owned descriptor has no memory-safety preconditions.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(LockError::InUse {
                dir: dir.to_path_buf(),
                lock: path.display().to_string(),
                holder,
            });
        }
        // The pid only names the holder in a second process's refusal: failing to write it
        // (a full disk) must not stop a start-up that holds the lock.
        let pid = std::process::id();
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{pid}"));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot record the pid in the lock file");
        }
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path())
            .err()
            .expect("second lock must fail");
        assert!(err.to_string().contains("in use"), "{err}");
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(first);
        assert!(DirLock::acquire(dir.path()).is_ok());
    }
}
