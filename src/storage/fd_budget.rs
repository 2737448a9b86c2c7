//! The node's file-descriptor budget: how many partitions it can serve and how many closed
//! segments each shard may keep open, derived from `RLIMIT_NOFILE` at start-up (on the main
//! thread, before shards start). Kafka has no such setting; Sluice derives it so that a
//! partition it accepted can always be opened again after a restart.
//!
//! Every open partition holds [`FDS_PER_PARTITION`] descriptors (its active segment's
//! `.log` as a reader handle and as the io_uring writer, and its `.index` and `.timeindex`
//! as io_uring writers); closed segments hold none of their own and go through the
//! per-shard cache ([`crate::storage::file_cache`]). Of the soft limit (raised to the hard limit first):
//! a fixed reserve for the process and each shard (stdio, lock, rings, eventfds,
//! listeners, short-lived opens such as checkpoints and index rewrites), then a quarter of
//! the rest for client connections and descriptors in flight (files a fetch still holds
//! after eviction, duplicates for blocking-pool reads), then an eighth of what is left for
//! the closed-segment caches, and the remainder for partitions.

/// Descriptors one open partition holds (see the module docs).
pub const FDS_PER_PARTITION: u64 = 4;
/// Descriptors kept for the process as a whole.
const PROCESS_RESERVE: u64 = 64;
/// Descriptors kept per shard (its rings, eventfds, listeners, short-lived opens).
const SHARD_RESERVE: u64 = 32;
/// The smallest closed-segment cache a shard gets, so reads of old data do not thrash.
const MIN_CACHE_PER_SHARD: u64 = 8;

/// What the descriptor limit allows this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft `RLIMIT_NOFILE` the budget was derived from.
    pub nofile: u64,
    /// The most partitions (all topics, internal ones included) the node accepts.
    pub max_partitions: usize,
    /// Open closed-segment files each shard's cache keeps at most.
    pub cache_per_shard: usize,
}

impl FdBudget {
    /// The budget for a soft limit of `nofile` descriptors and `cores` shards (at least 1); see
    /// the module doc for the split.
    pub fn derive(nofile: u64, cores: usize) -> Self {
        let cores = cores.max(1) as u64;
        let usable = nofile.saturating_sub(PROCESS_RESERVE + SHARD_RESERVE * cores);
        let files = usable - usable / 4;
        let cache_total = (files / 8).max(MIN_CACHE_PER_SHARD * cores);
        let max_partitions = files.saturating_sub(cache_total) / FDS_PER_PARTITION;
        Self {
            nofile,
            max_partitions: usize::try_from(max_partitions).unwrap_or(usize::MAX),
            cache_per_shard: usize::try_from(cache_total / cores).unwrap_or(usize::MAX),
        }
    }

    /// What an operator does to get more room, for refusals and start-up errors.
    pub fn hint(&self) -> String {
        format!(
            "each partition keeps {FDS_PER_PARTITION} files open and the open-file limit \
             (RLIMIT_NOFILE) is {}: raise it (ulimit -n, systemd LimitNOFILE) to serve more",
            self.nofile
        )
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as Kafka's packaging asks operators
/// to) and returns the (soft, hard) limits in force afterwards.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct on our stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads a valid rlimit struct; raising soft to hard needs no
        // privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } == 0 {
            limit = raised;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), "could not raise the open-file limit to its hard limit");
        }
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// True when `e` means the process (or system) ran out of file descriptors. glommio's
/// errors keep only the kind and the message of the OS error (there is no kind for EMFILE),
/// so the message is checked too.
pub fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    if let Some(code) = e.raw_os_error() {
        return code == libc::EMFILE || code == libc::ENFILE;
    }
    let text = e.to_string();
    [libc::EMFILE, libc::ENFILE]
        .iter()
        .any(|code| text.contains(&format!("(os error {code})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_room_for_connections_and_the_cache() {
        let b = FdBudget::derive(1024, 2);
        // usable 896, files 672, cache 84, partitions (672-84)/4.
        assert_eq!(b.max_partitions, 147);
        assert_eq!(b.cache_per_shard, 42);
        let needed = b.max_partitions as u64 * FDS_PER_PARTITION + 2 * b.cache_per_shard as u64;
        assert!(needed <= 1024 - 64 - 2 * 32 - 896 / 4);
        let big = FdBudget::derive(1 << 20, 2);
        assert!(big.max_partitions > 150_000, "{big:?}");
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_out_of_descriptors(&emfile));
        let wrapped = std::io::Error::other(format!("{emfile}, op: Opening path"));
        assert!(is_out_of_descriptors(&wrapped), "glommio's enhanced errors");
        assert!(!is_out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
        let tiny = FdBudget::derive(100, 4);
        assert_eq!(tiny.max_partitions, 0);
        assert!(tiny.cache_per_shard >= 1);
    }
}
