//! Facts about the host and the device under a directory, read from /proc, /sys and statfs:
//! kernel, device model, scheduler, filesystem, memory counters. Read-only; called from the
//! lab's main thread and from the sampler thread (`memory_counters`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What every CSV row carries about where it was measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel: String,
    /// Whole-disk name (`nvme0n1`, `vda`), or `none` when the directory is not on a block device.
    pub device: String,
    /// The device's model string (NVMe/SCSI), or the driver for virtio disks that have none.
    pub device_model: String,
    /// The active I/O scheduler of that disk.
    pub scheduler: String,
    /// Filesystem type of the directory (statfs magic, named).
    pub filesystem: String,
}

/// Reads a /proc or /sys file, trimmed; `None` when absent or unreadable.
pub fn read_trim(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// The selected entry of sysfs's `a [b] c` lists.
pub fn bracketed(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with('[') && w.ends_with(']'))
        .map(|w| w.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|| text.to_string())
}

impl HostFacts {
    /// Facts for the device and filesystem holding `dir`.
    pub fn of(dir: &Path) -> Self {
        let kernel = read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into());
        let filesystem = filesystem_of(dir);
        match disk_of(dir) {
            Some(disk) => Self {
                kernel,
                device: name_of(&disk),
                device_model: model_of(&disk),
                scheduler: read_trim(disk.join("queue/scheduler"))
                    .map(|s| bracketed(&s))
                    .unwrap_or_else(|| "n/a".into()),
                filesystem,
            },
            None => Self {
                kernel,
                device: "none".into(),
                device_model: "n/a".into(),
                scheduler: "n/a".into(),
                filesystem,
            },
        }
    }
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The sysfs directory of the whole disk holding `path` (a partition's queue settings live on
/// its parent disk).
pub fn disk_of(path: &Path) -> Option<PathBuf> {
    let dev = fs::metadata(path).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let node = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    if node.join("queue").exists() {
        return Some(node);
    }
    let parent = node.parent()?;
    parent.join("queue").exists().then(|| parent.to_path_buf())
}

fn model_of(disk: &Path) -> String {
    let model = read_trim(disk.join("device/model")).filter(|m| !m.is_empty());
    if let Some(m) = model {
        return m;
    }
    // virtio disks have no model string; the driver name at least says what it is.
    fs::read_link(disk.join("device/driver"))
        .ok()
        .map(|d| format!("{} (no model string)", name_of(&d)))
        .unwrap_or_else(|| "unknown".into())
}

/// The filesystem type of `dir` from statfs's magic number.
pub fn filesystem_of(dir: &Path) -> String {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return "unknown".into();
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &raw mut st) } != 0 {
        return "unknown".into();
    }
    fs_name(st.f_type as i64)
}

fn fs_name(magic: i64) -> String {
    let name = match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0xF2F5_2010 => "f2fs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x0102_1997 => "9p",
        _ => return format!("unknown (0x{magic:x})"),
    };
    name.into()
}

/// Free bytes for an unprivileged writer in `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &raw mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Dirty and writeback page counts the sampler records during a run, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryCounters {
    /// /proc/meminfo Dirty.
    pub dirty_kib: u64,
    /// /proc/meminfo Writeback.
    pub writeback_kib: u64,
    /// /proc/vmstat nr_dirty (pages).
    pub nr_dirty: u64,
    /// /proc/vmstat nr_writeback (pages).
    pub nr_writeback: u64,
    /// /proc/meminfo MemFree.
    pub mem_free_kib: u64,
    /// /proc/meminfo MemAvailable.
    pub mem_available_kib: u64,
}

/// One `key value` field of /proc/meminfo or /proc/vmstat.
pub fn proc_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?.trim_end_matches(':');
        (k == key).then(|| it.next()?.parse().ok())?
    })
}

/// Reads the counters now.
pub fn memory_counters() -> MemoryCounters {
    let meminfo = read_trim("/proc/meminfo").unwrap_or_default();
    let vmstat = read_trim("/proc/vmstat").unwrap_or_default();
    let m = |k| proc_field(&meminfo, k).unwrap_or(0);
    let v = |k| proc_field(&vmstat, k).unwrap_or(0);
    MemoryCounters {
        dirty_kib: m("Dirty"),
        writeback_kib: m("Writeback"),
        nr_dirty: v("nr_dirty"),
        nr_writeback: v("nr_writeback"),
        mem_free_kib: m("MemFree"),
        mem_available_kib: m("MemAvailable"),
    }
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat; `None` once it exited.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_picks_selected() {
        assert_eq!(bracketed("none [mq-deadline] kyber"), "mq-deadline");
        assert_eq!(bracketed("none"), "none");
    }

    #[test]
    fn proc_field_reads_both_formats() {
        let meminfo = "MemFree:  100 kB\nDirty:      42 kB\n";
        assert_eq!(proc_field(meminfo, "Dirty"), Some(42));
        assert_eq!(
            proc_field("nr_dirty 7\nnr_writeback 3\n", "nr_writeback"),
            Some(3)
        );
        assert_eq!(proc_field(meminfo, "Writeback"), None);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(process_cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn facts_of_tempdir() {
        let facts = HostFacts::of(&std::env::temp_dir());
        assert!(!facts.kernel.is_empty());
        assert!(!facts.filesystem.is_empty());
    }
}
