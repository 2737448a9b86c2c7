//! Sluice's tuning lab: an io_uring device probe, Sluice sweeps driven by sluice-perf, OS knob
//! checks, plots and a markdown report, all written to one dated run folder. The library is
//! driven from the `sluice-lab` binary's main thread; the sampler alone has a thread of its own.

pub mod csvio;
pub mod error;
pub mod host;
pub mod knobs;
pub mod lab;
pub mod plot;
pub mod probe;
pub mod report;
pub mod sampler;
pub mod sweep;
