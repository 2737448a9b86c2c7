//! The lab's one error type. Used on every thread of the lab (main, sampler, probe).

use std::path::PathBuf;

/// Why a lab step could not run. Cells that the device or kernel cannot do are not errors:
/// they are recorded as `unsupported` rows.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The target is a raw block or character device and `--allow-raw-device` was not given.
    #[error(
        "{0} is a raw device; the probe only writes files it creates inside a directory (pass --allow-raw-device for read-only probing of a device)"
    )]
    RawDevice(PathBuf),
    /// The target directory has too little free space for the probe file.
    #[error(
        "{path} has {free_mib} MiB free; the probe file needs {need_mib} MiB (lower --file-size)"
    )]
    NoSpace {
        /// The data directory.
        path: PathBuf,
        /// Free space there.
        free_mib: u64,
        /// What the probe wanted (twice the file size).
        need_mib: u64,
    },
    /// A child process (broker, load generator, tuning/check) failed.
    #[error("{what}: {detail}")]
    Child {
        /// Which program.
        what: String,
        /// Its exit status and the tail of its output.
        detail: String,
    },
    /// A CSV file could not be written or read.
    #[error("csv {path}: {source}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The csv crate's error.
        source: csv::Error,
    },
    /// sluice-perf's JSON record or tuning/check's JSON could not be parsed.
    #[error("json {path}: {source}")]
    Json {
        /// Where the JSON came from.
        path: PathBuf,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A plot could not be drawn.
    #[error("plot {path}: {detail}")]
    Plot {
        /// The SVG being drawn.
        path: PathBuf,
        /// plotters' error, as text (its error type is generic over the backend).
        detail: String,
    },
    /// A command-line value was out of range.
    #[error("{0}")]
    Usage(String),
}

impl LabError {
    /// An `Io` error with its context, for `map_err`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| LabError::Io { what, path, source }
    }
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, LabError>;
