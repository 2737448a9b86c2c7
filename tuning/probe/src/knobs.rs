//! The OS knob checks: runs the read-only `tuning/check --json` (which owns the checks and the
//! command to change each) and keeps its rows for the report and `knobs.csv`. Nothing here
//! changes a setting. Runs on the lab's main thread.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// One check as `tuning/check --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KnobRow {
    /// What is checked.
    pub check: String,
    /// The value found.
    pub value: String,
    /// What Sluice wants.
    pub recommended: String,
    /// ok, warn or info.
    pub status: String,
    /// Why it matters.
    pub why: String,
    /// The command that would change it (printed, never run).
    #[serde(default)]
    pub change: String,
}

/// Runs `check` (the tuning/check script) for the device holding `data_dir`.
pub fn run_check(check: &Path, data_dir: &Path) -> Result<Vec<KnobRow>> {
    let out = Command::new("python3")
        .arg(check)
        .arg("--json")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .map_err(LabError::io("running", check))?;
    if !out.status.success() {
        return Err(LabError::Child {
            what: check.display().to_string(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|source| LabError::Json {
        path: check.into(),
        source,
    })
}

/// The default location of tuning/check: beside this crate.
pub fn default_check_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../check")
}
