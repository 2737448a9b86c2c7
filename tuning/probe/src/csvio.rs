//! Reading and writing the run folder's CSVs (probe.csv, sweeps.csv, vmstat.csv, knobs.csv)
//! through the csv crate, so `plot` can redraw a recorded run from its files. Main thread.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{LabError, Result};

/// Writes `rows` with a header row.
pub fn write<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let err = |source| LabError::Csv {
        path: path.into(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    for r in rows {
        w.serialize(r).map_err(err)?;
    }
    w.flush().map_err(|e| err(e.into()))
}

/// Reads every row.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let err = |source| LabError::Csv {
        path: path.into(),
        source,
    };
    let mut r = csv::Reader::from_path(path).map_err(err)?;
    r.deserialize()
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(err)
}
