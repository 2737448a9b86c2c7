//! `sluice-lab`: the tuning lab's command line. Runs on the main thread.

fn main() {}
