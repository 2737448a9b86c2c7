//! What the probe may touch: a file it creates itself (O_EXCL, a name of its own) inside the
//! given directory, filled with random bytes and deleted when dropped; or, only with
//! `--allow-raw-device`, a raw device opened read-only. Runs on the probe's (main) thread.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use crate::error::{LabError, Result};
use crate::host;

/// Where the probe does its I/O.
#[derive(Debug)]
pub struct ProbeTarget {
    path: PathBuf,
    size: u64,
    /// True for a raw device: read workloads only, and the path is never deleted.
    raw_device: bool,
}

impl ProbeTarget {
    /// Creates `sluice-probe-<pid>-<n>.dat` in `dir` (never an existing file) and fills it with
    /// `size` random bytes, so reads hit data the probe wrote and a compressing device cannot
    /// cheat. A raw device path is refused unless `allow_raw_device`.
    pub fn prepare(dir: &Path, size: u64, allow_raw_device: bool) -> Result<Self> {
        let meta = std::fs::metadata(dir).map_err(LabError::io("stat", dir))?;
        let ft = meta.file_type();
        if ft.is_block_device() || ft.is_char_device() {
            if !allow_raw_device {
                return Err(LabError::RawDevice(dir.to_path_buf()));
            }
            return Self::raw(dir);
        }
        if !meta.is_dir() {
            return Err(LabError::Usage(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        check_space(dir, size)?;
        let (path, file) = create_own_file(dir)?;
        let target = Self {
            path,
            size,
            raw_device: false,
        };
        fill(&file, size).map_err(LabError::io("filling", &target.path))?;
        Ok(target)
    }

    fn raw(dev: &Path) -> Result<Self> {
        let file = File::open(dev).map_err(LabError::io("opening", dev))?;
        let size = device_size(&file).map_err(LabError::io("sizing", dev))?;
        Ok(Self {
            path: dev.to_path_buf(),
            size,
            raw_device: true,
        })
    }

    /// The file or device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the probe may address.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when writes must be skipped.
    pub fn is_raw_device(&self) -> bool {
        self.raw_device
    }

    /// Opens the target for one cell; O_DIRECT when asked (EINVAL here means the filesystem
    /// does not support it, which the caller records as unsupported).
    pub fn open(&self, direct: bool) -> std::io::Result<File> {
        let mut o = OpenOptions::new();
        o.read(true).write(!self.raw_device);
        if direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o.open(&self.path)
    }
}

impl Drop for ProbeTarget {
    fn drop(&mut self) {
        if !self.raw_device {
            // Only ever the file `prepare` created with O_EXCL.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn check_space(dir: &Path, size: u64) -> Result<()> {
    let free = host::free_bytes(dir).unwrap_or(u64::MAX);
    // Twice the file: the filesystem, and whatever else shares it, keep room to breathe.
    if free < size.saturating_mul(2) {
        return Err(LabError::NoSpace {
            path: dir.to_path_buf(),
            free_mib: free >> 20,
            need_mib: (size * 2) >> 20,
        });
    }
    Ok(())
}

fn create_own_file(dir: &Path) -> Result<(PathBuf, File)> {
    for n in 0..1000 {
        let path = dir.join(format!("sluice-probe-{}-{n}.dat", std::process::id()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LabError::io("creating", path)(e)),
        }
    }
    Err(LabError::Usage(format!(
        "no free probe file name in {}",
        dir.display()
    )))
}

fn fill(mut file: &File, size: u64) -> std::io::Result<()> {
    let mut chunk = vec![0u8; 1 << 20];
    SmallRng::seed_from_u64(size).fill_bytes(&mut chunk);
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

fn device_size(file: &File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::End(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_fills_and_deletes_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let bystander = dir.path().join("keep.txt");
        std::fs::write(&bystander, b"not the probe's").unwrap();
        let path = {
            let t = ProbeTarget::prepare(dir.path(), 1 << 20, false).unwrap();
            assert_eq!(std::fs::metadata(t.path()).unwrap().len(), 1 << 20);
            t.path().to_path_buf()
        };
        assert!(!path.exists(), "probe file left behind");
        assert_eq!(std::fs::read(&bystander).unwrap(), b"not the probe's");
    }

    #[test]
    fn refuses_raw_device_without_flag() {
        let err = ProbeTarget::prepare(Path::new("/dev/null"), 1 << 20, false).unwrap_err();
        assert!(matches!(err, LabError::RawDevice(_)), "{err}");
    }

    #[test]
    fn refuses_more_than_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let err = ProbeTarget::prepare(dir.path(), u64::MAX / 4, false).unwrap_err();
        assert!(matches!(err, LabError::NoSpace { .. }), "{err}");
    }
}
