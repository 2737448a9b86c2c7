//! One probe cell on a fresh io_uring: keeps `qd` reads or writes in flight for the cell's time
//! budget and records each one's latency (submission to completion) in an HdrHistogram; or
//! issues fdatasync back to back, alone or beside a stream of writes. Runs on the probe's
//! (main) thread; the ring and its buffers live only for the cell.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use io_uring::{IoUring, opcode, squeue, types};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How the ring is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RingMode {
    /// Interrupt-driven completions, submissions by `io_uring_enter`.
    Default,
    /// A kernel thread polls the submission queue (no syscall per submission).
    Sqpoll,
    /// Completions are polled from the device (O_DIRECT only; needs poll queues).
    Iopoll,
}

/// What a cell does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Writes at increasing offsets (wrapping at the file's end).
    SeqWrite,
    /// Writes at random block-aligned offsets.
    RandWrite,
    /// Reads at increasing offsets.
    SeqRead,
    /// Reads at random block-aligned offsets.
    RandRead,
    /// fdatasync back to back, each after one 4 KiB write (nothing else running).
    FsyncIdle,
    /// fdatasync back to back while `qd` sequential writes stay in flight.
    FsyncUnderLoad,
}

impl Workload {
    /// True for workloads that write.
    pub fn writes(self) -> bool {
        !matches!(self, Workload::SeqRead | Workload::RandRead)
    }
}

/// One cell's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellSpec {
    /// What it does.
    pub workload: Workload,
    /// O_DIRECT instead of the page cache.
    pub direct: bool,
    /// Ring setup.
    pub ring: RingMode,
    /// Buffers registered with the ring (READ_FIXED / WRITE_FIXED).
    pub reg_buffers: bool,
    /// The file registered with the ring (fixed file index).
    pub reg_files: bool,
    /// Bytes per operation.
    pub block_size: usize,
    /// Operations in flight.
    pub queue_depth: usize,
}

/// What a cell measured.
#[derive(Debug)]
pub struct Measured {
    /// Length of the timed loop.
    pub seconds: f64,
    /// Operations completed (for fsync cells: fdatasyncs).
    pub ops: u64,
    /// Bytes read or written (for fsync cells: by the writes beside them).
    pub bytes: u64,
    /// Per-operation latency in microseconds (for fsync cells: the fdatasyncs only).
    pub latency_us: Histogram<u64>,
    /// The fdatasync after a write cell, in ms (0 for reads): part of the honest write rate.
    pub sync_ms: f64,
}

/// Why a cell did not measure: the kernel or device said no (`Unsupported`), or something
/// else went wrong (`Failed`).
#[derive(Debug)]
pub enum CellError {
    /// EINVAL, EOPNOTSUPP, ENOMEM (memlock) and the like, with what was refused.
    Unsupported(String),
    /// Any other error.
    Failed(String),
}

impl CellError {
    fn from_io(what: &str, e: std::io::Error) -> Self {
        let unsupported = matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOMEM | libc::EPERM | libc::ENOSYS)
        );
        let text = format!("{what}: {e}");
        if unsupported {
            CellError::Unsupported(text)
        } else {
            CellError::Failed(text)
        }
    }
}

/// Page-aligned buffers for O_DIRECT (and for registering), freed on drop.
struct AlignedBufs {
    ptr: *mut u8,
    layout: Layout,
    each: usize,
    count: usize,
}

impl AlignedBufs {
    fn new(each: usize, count: usize) -> Self {
        let layout = Layout::from_size_align(each * count, 4096).expect("probe buffer layout");
        // SAFETY: the layout has a non-zero size (block size and depth are at least 1).
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "probe buffers: out of memory");
        // SAFETY: `ptr` points at `layout.size()` bytes we own; random content keeps writes
        // incompressible.
        let slice = unsafe { std::slice::from_raw_parts_mut(ptr, layout.size()) };
        rand::rngs::SmallRng::seed_from_u64(7).fill(slice);
        Self {
            ptr,
            layout,
            each,
            count,
        }
    }

    fn buf(&self, i: usize) -> *mut u8 {
        // SAFETY: i < count, so the offset stays inside the allocation.
        unsafe { self.ptr.add(i * self.each) }
    }

    fn iovecs(&self) -> Vec<libc::iovec> {
        (0..self.count)
            .map(|i| libc::iovec {
                iov_base: self.buf(i).cast(),
                iov_len: self.each,
            })
            .collect()
    }
}

impl Drop for AlignedBufs {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// The user_data of the fsync operation in an fsync cell (writes use their slot index).
const FSYNC_TAG: u64 = u64::MAX;

/// A ring with its registered resources, for one cell.
struct Cell<'a> {
    ring: IoUring,
    spec: CellSpec,
    file: &'a File,
    bufs: AlignedBufs,
    file_size: u64,
    cursor: u64,
    rng: SmallRng,
}

/// Runs one cell for `budget` against `file` (`file_size` bytes addressable).
pub fn run_cell(
    spec: CellSpec,
    file: &File,
    file_size: u64,
    budget: Duration,
) -> Result<Measured, CellError> {
    let mut cell = Cell::new(spec, file, file_size)?;
    let mut m = match spec.workload {
        Workload::FsyncIdle | Workload::FsyncUnderLoad => cell.fsync_loop(budget)?,
        _ => cell.io_loop(budget)?,
    };
    if spec.workload.writes() {
        let t = Instant::now();
        file.sync_data()
            .map_err(|e| CellError::from_io("fdatasync", e))?;
        m.sync_ms = t.elapsed().as_secs_f64() * 1e3;
    }
    Ok(m)
}

impl<'a> Cell<'a> {
    fn new(spec: CellSpec, file: &'a File, file_size: u64) -> Result<Self, CellError> {
        let mut b = IoUring::builder();
        match spec.ring {
            RingMode::Default => {}
            RingMode::Sqpoll => {
                b.setup_sqpoll(1000);
            }
            RingMode::Iopoll => {
                b.setup_iopoll();
            }
        }
        let entries = (spec.queue_depth as u32 + 1).next_power_of_two().max(8);
        let ring = b
            .build(entries)
            .map_err(|e| CellError::from_io("ring setup", e))?;
        let bufs = AlignedBufs::new(spec.block_size, spec.queue_depth.max(1));
        if spec.reg_buffers {
            // SAFETY: the buffers outlive the ring (both are fields of Cell; the ring is
            // dropped first, being declared first).
            unsafe { ring.submitter().register_buffers(&bufs.iovecs()) }
                .map_err(|e| CellError::from_io("register_buffers", e))?;
        }
        if spec.reg_files {
            ring.submitter()
                .register_files(&[file.as_raw_fd()])
                .map_err(|e| CellError::from_io("register_files", e))?;
        }
        let blocks = (file_size / spec.block_size as u64).max(1);
        if blocks * (spec.block_size as u64) > file_size {
            return Err(CellError::Unsupported(format!(
                "block size {} larger than the probe file",
                spec.block_size
            )));
        }
        Ok(Self {
            ring,
            spec,
            file,
            bufs,
            file_size,
            cursor: 0,
            rng: SmallRng::seed_from_u64(42),
        })
    }

    fn next_offset(&mut self) -> u64 {
        let bs = self.spec.block_size as u64;
        match self.spec.workload {
            Workload::RandWrite | Workload::RandRead => {
                self.rng.random_range(0..self.file_size / bs) * bs
            }
            _ => {
                if self.cursor + bs > self.file_size {
                    self.cursor = 0;
                }
                let off = self.cursor;
                self.cursor += bs;
                off
            }
        }
    }

    /// The read or write for buffer slot `slot` at the next offset.
    fn entry(&mut self, slot: usize) -> squeue::Entry {
        let off = self.next_offset();
        let (buf, len) = (self.bufs.buf(slot), self.spec.block_size as u32);
        let write = self.spec.workload.writes();
        let e = match (self.spec.reg_files, self.spec.reg_buffers, write) {
            (true, true, true) => opcode::WriteFixed::new(types::Fixed(0), buf, len, slot as u16)
                .offset(off)
                .build(),
            (true, true, false) => opcode::ReadFixed::new(types::Fixed(0), buf, len, slot as u16)
                .offset(off)
                .build(),
            (true, false, true) => opcode::Write::new(types::Fixed(0), buf, len)
                .offset(off)
                .build(),
            (true, false, false) => opcode::Read::new(types::Fixed(0), buf, len)
                .offset(off)
                .build(),
            (false, true, true) => opcode::WriteFixed::new(self.fd(), buf, len, slot as u16)
                .offset(off)
                .build(),
            (false, true, false) => opcode::ReadFixed::new(self.fd(), buf, len, slot as u16)
                .offset(off)
                .build(),
            (false, false, true) => opcode::Write::new(self.fd(), buf, len).offset(off).build(),
            (false, false, false) => opcode::Read::new(self.fd(), buf, len).offset(off).build(),
        };
        e.user_data(slot as u64)
    }

    fn fd(&self) -> types::Fd {
        types::Fd(self.file.as_raw_fd())
    }

    fn push(&mut self, e: &squeue::Entry) -> Result<(), CellError> {
        // SAFETY: every buffer an entry points at lives in `self.bufs` until the ring is gone.
        unsafe { self.ring.submission().push(e) }
            .map_err(|_| CellError::Failed("submission queue full".into()))
    }

    /// Reads or writes with `qd` in flight until the budget is spent, then drains.
    fn io_loop(&mut self, budget: Duration) -> Result<Measured, CellError> {
        let qd = self.spec.queue_depth;
        let mut hist = new_histogram();
        let mut started = vec![Instant::now(); qd];
        let mut free: Vec<usize> = (0..qd).collect();
        let (t0, mut ops, mut bytes) = (Instant::now(), 0u64, 0u64);
        loop {
            let open = t0.elapsed() < budget;
            while open && let Some(slot) = free.pop() {
                let e = self.entry(slot);
                started[slot] = Instant::now();
                self.push(&e)?;
            }
            if free.len() == qd {
                break;
            }
            self.ring
                .submit_and_wait(1)
                .map_err(|e| CellError::from_io("io_uring_enter", e))?;
            for cqe in self.ring.completion() {
                let slot = cqe.user_data() as usize;
                let res = check_result(cqe.result(), self.spec.workload)?;
                record(&mut hist, started[slot].elapsed());
                (ops, bytes) = (ops + 1, bytes + res);
                free.push(slot);
            }
        }
        Ok(Measured {
            seconds: t0.elapsed().as_secs_f64(),
            ops,
            bytes,
            latency_us: hist,
            sync_ms: 0.0,
        })
    }

    /// fdatasync back to back; under load, `qd` writes stay in flight beside it.
    fn fsync_loop(&mut self, budget: Duration) -> Result<Measured, CellError> {
        let under_load = self.spec.workload == Workload::FsyncUnderLoad;
        let writers = if under_load { self.spec.queue_depth } else { 0 };
        let mut hist = new_histogram();
        let mut free: Vec<usize> = (0..writers).collect();
        let (t0, mut syncs, mut bytes) = (Instant::now(), 0u64, 0u64);
        let mut fsync_started: Option<Instant> = None;
        loop {
            let open = t0.elapsed() < budget;
            while open && let Some(slot) = free.pop() {
                let e = self.entry(slot);
                self.push(&e)?;
            }
            if open && fsync_started.is_none() {
                if !under_load {
                    // Something to sync: one 4 KiB page, written outside the timing.
                    self.small_write(&mut bytes)?;
                }
                self.push_fsync()?;
                fsync_started = Some(Instant::now());
            }
            if free.len() == writers && fsync_started.is_none() {
                break;
            }
            self.ring
                .submit_and_wait(1)
                .map_err(|e| CellError::from_io("io_uring_enter", e))?;
            for cqe in self.ring.completion() {
                let res = check_result(cqe.result(), Workload::SeqWrite)?;
                if cqe.user_data() == FSYNC_TAG {
                    record(
                        &mut hist,
                        fsync_started
                            .take()
                            .map(|s| s.elapsed())
                            .unwrap_or_default(),
                    );
                    syncs += 1;
                } else {
                    bytes += res;
                    free.push(cqe.user_data() as usize);
                }
            }
        }
        Ok(Measured {
            seconds: t0.elapsed().as_secs_f64(),
            ops: syncs,
            bytes,
            latency_us: hist,
            sync_ms: 0.0,
        })
    }

    fn push_fsync(&mut self) -> Result<(), CellError> {
        let e = if self.spec.reg_files {
            opcode::Fsync::new(types::Fixed(0))
        } else {
            opcode::Fsync::new(self.fd())
        };
        let e = e
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(FSYNC_TAG);
        self.push(&e)
    }

    fn small_write(&mut self, bytes: &mut u64) -> Result<(), CellError> {
        use std::os::unix::fs::FileExt;
        let off = self.next_offset();
        // SAFETY: buffer 0 holds at least one block of initialised bytes.
        let page =
            unsafe { std::slice::from_raw_parts(self.bufs.buf(0), 4096.min(self.bufs.each)) };
        self.file
            .write_at(page, off)
            .map_err(|e| CellError::from_io("pwrite", e))?;
        *bytes += page.len() as u64;
        Ok(())
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 100 s at 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("histogram bounds")
}

fn record(hist: &mut Histogram<u64>, d: Duration) {
    hist.saturating_record((d.as_micros() as u64).max(1));
}

/// The byte count of a completion, or the error it carries.
fn check_result(res: i32, workload: Workload) -> Result<u64, CellError> {
    if res >= 0 {
        return Ok(res as u64);
    }
    let e = std::io::Error::from_raw_os_error(-res);
    let what = if workload.writes() { "write" } else { "read" };
    Err(CellError::from_io(what, e))
}
