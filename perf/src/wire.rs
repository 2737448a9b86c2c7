//! `--client wire`: a lean open-loop client that speaks Kafka's protocol itself, so a latency
//! run measures the broker and not a client library's threads.
//!
//! Why: on a 2-core machine the client shares one core. librdkafka hands every record through
//! its application, broker and polling threads; each hand-off is a wake-up on that busy core,
//! and at 200,000 msg/s they put about a millisecond into the client's produce-ack p99 that the
//! broker never sees (`perf/runs/2026-12-07-wire-client`). This client does the least a
//! producer must: one thread per connection builds uncompressed v2 record batches on the
//! same schedule (`produce::Schedule`) and linger rule as librdkafka (a batch leaves once its
//! first record has waited `--linger-ms`, or at `--batch-size` bytes) and writes Produce v7
//! requests back to back; a second thread reads the responses in order. The consumer is one
//! thread of Fetch v4 long-polls from each partition's end. Latency counts from the due send
//! time, as with librdkafka.
//!
//! Scope: single-node brokers (every partition is asked of the bootstrap broker), no
//! compression, no idempotence. A Kafka error in any response is counted and reported.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cli::Args;
use crate::consume::{self, LatencyOf};
use crate::payload::RecordMaker;
use crate::produce::{Schedule, SenderOutcome};
use crate::stats::{Recorder, Window};

const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const LIST_OFFSETS: i16 = 2;
const CLIENT_ID: &str = "sluice-perf-wire";
/// Largest response frame accepted (a Fetch answers at most `FETCH_MAX_BYTES` of records).
const MAX_FRAME: usize = 64 << 20;
const FETCH_MAX_BYTES: i32 = 32 << 20;
const PARTITION_MAX_BYTES: i32 = 8 << 20;
/// A Fetch long-poll waits this long for new records: short enough to see `stop` promptly.
const FETCH_MAX_WAIT_MS: i32 = 100;

/// One connection to the broker, with the request framing.
struct Conn {
    stream: TcpStream,
    next_correlation: i32,
}

impl Conn {
    fn open(bootstrap: &str) -> anyhow::Result<Self> {
        let stream =
            TcpStream::connect(bootstrap).with_context(|| format!("connecting to {bootstrap}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            next_correlation: 1,
        })
    }

    /// Starts a request frame: room for its size (set by `send_frame`) and header v1.
    /// Returns the frame, to which the caller appends the body, and its correlation id.
    fn start_frame(&mut self, api_key: i16, version: i16, capacity: usize) -> (Vec<u8>, i32) {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let mut frame = Vec::with_capacity(16 + CLIENT_ID.len() + capacity);
        put_i32(&mut frame, 0); // size
        put_i16(&mut frame, api_key);
        put_i16(&mut frame, version);
        put_i32(&mut frame, correlation);
        put_str(&mut frame, CLIENT_ID);
        (frame, correlation)
    }

    /// Sets the frame's size and writes it in one call (two would cost a second system
    /// call and segment).
    fn send_frame(&mut self, mut frame: Vec<u8>) -> io::Result<()> {
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame)
    }

    /// Writes one request (header v1 + `body`); returns its correlation id.
    fn send(&mut self, api_key: i16, version: i16, body: &[u8]) -> io::Result<i32> {
        let (mut frame, correlation) = self.start_frame(api_key, version, body.len());
        frame.extend_from_slice(body);
        self.send_frame(frame)?;
        Ok(correlation)
    }

    /// Sends a request and reads its response body (after the correlation id).
    fn call(&mut self, api_key: i16, version: i16, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        let correlation = self.send(api_key, version, body)?;
        let (got, body) = read_response(&mut self.stream)?;
        if got != correlation {
            bail!("response to correlation id {got}, expected {correlation}");
        }
        Ok(body)
    }
}

/// Reads one response frame: its correlation id and the rest.
fn read_response(stream: &mut impl Read) -> anyhow::Result<(i32, Vec<u8>)> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    if !(4..=MAX_FRAME as i32).contains(&size) {
        bail!("response frame of {size} bytes");
    }
    let mut frame = vec![0u8; size as usize];
    stream.read_exact(&mut frame)?;
    let correlation = i32::from_be_bytes(frame[..4].try_into()?);
    frame.drain(..4);
    Ok((correlation, frame))
}

// ---- encoding ----

fn put_i16(b: &mut Vec<u8>, v: i16) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_str(b: &mut Vec<u8>, s: &str) {
    put_i16(b, s.len() as i16);
    b.extend_from_slice(s.as_bytes());
}
/// Zig-zag varint, as record fields use.
fn put_varint(b: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.push((z as u8) | 0x80);
        z >>= 7;
    }
    b.push(z as u8);
}

/// Bytes of `v` as a zig-zag varint.
fn varint_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - z.leading_zeros() as usize).max(1).div_ceil(7)
}

/// An uncompressed v2 record batch written in place at the end of a request: each record
/// goes straight from the record maker into the frame (one copy), and `finish` fills in the
/// lengths, the count and the CRC.
struct BatchWriter {
    /// Where the batch starts in the buffer.
    start: usize,
    records: i32,
}

impl BatchWriter {
    /// Writes a batch header stamped `timestamp_ms` at the end of `buf`.
    fn begin(buf: &mut Vec<u8>, timestamp_ms: i64) -> Self {
        let start = buf.len();
        put_i64(buf, 0); // base offset: the broker assigns it
        put_i32(buf, 0); // batch length, set by `finish`
        put_i32(buf, -1); // partition leader epoch
        buf.push(2); // magic
        put_i32(buf, 0); // CRC, set by `finish`
        put_i16(buf, 0); // attributes: no compression, create time
        put_i32(buf, 0); // last offset delta, set by `finish`
        put_i64(buf, timestamp_ms);
        put_i64(buf, timestamp_ms);
        put_i64(buf, -1); // producer id
        put_i16(buf, -1); // producer epoch
        put_i32(buf, -1); // base sequence
        put_i32(buf, 0); // record count, set by `finish`
        Self { start, records: 0 }
    }

    /// Appends one record (no headers, timestamp delta 0).
    fn push(&mut self, buf: &mut Vec<u8>, key: Option<&[u8]>, value: &[u8]) {
        let delta = i64::from(self.records);
        let key_len = key.map_or(-1, |k| k.len() as i64);
        let len = 1
            + varint_len(0)
            + varint_len(delta)
            + varint_len(key_len)
            + key.map_or(0, <[u8]>::len)
            + varint_len(value.len() as i64)
            + value.len()
            + varint_len(0);
        put_varint(buf, len as i64);
        buf.push(0); // attributes
        put_varint(buf, 0); // timestamp delta
        put_varint(buf, delta);
        put_varint(buf, key_len);
        buf.extend_from_slice(key.unwrap_or_default());
        put_varint(buf, value.len() as i64);
        buf.extend_from_slice(value);
        put_varint(buf, 0); // headers
        self.records += 1;
    }

    /// Fills in the batch length, last offset delta, record count and CRC (which covers
    /// the attributes to the end, as a broker checks it).
    fn finish(self, buf: &mut [u8]) {
        let s = self.start;
        let length = (buf.len() - s - 12) as i32;
        buf[s + 8..s + 12].copy_from_slice(&length.to_be_bytes());
        buf[s + 23..s + 27].copy_from_slice(&(self.records - 1).to_be_bytes());
        buf[s + 57..s + 61].copy_from_slice(&self.records.to_be_bytes());
        let crc = crc32c::crc32c(&buf[s + 21..]);
        buf[s + 17..s + 21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// The body of a Produce v7 request up to its one partition's records; returns where the
/// records' length goes (set once the batch is written).
fn begin_produce(frame: &mut Vec<u8>, topic: &str, partition: i32, acks: i16) -> usize {
    put_i16(frame, -1); // transactional id: null
    put_i16(frame, acks);
    put_i32(frame, 30_000); // timeout ms
    put_i32(frame, 1);
    put_str(frame, topic);
    put_i32(frame, 1);
    put_i32(frame, partition);
    let records_len_at = frame.len();
    put_i32(frame, 0);
    records_len_at
}

// ---- decoding ----

/// A cursor over a response; every read fails cleanly on a short buffer.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        if self.buf.len() < n {
            bail!("response cut short");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn i8(&mut self) -> anyhow::Result<i8> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> anyhow::Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into()?))
    }
    fn i32(&mut self) -> anyhow::Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }
    fn i64(&mut self) -> anyhow::Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into()?))
    }
    fn string(&mut self) -> anyhow::Result<&'a [u8]> {
        let len = self.i16()?;
        self.take(len.max(0) as usize)
    }
    /// A zig-zag varint (records' own fields).
    fn varint(&mut self) -> anyhow::Result<i64> {
        let mut z = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        bail!("varint longer than 10 bytes")
    }
    /// A varint length and that many bytes; `None` for -1.
    fn var_bytes(&mut self) -> anyhow::Result<Option<&'a [u8]>> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }
}

/// The error code of the one partition of a Produce v7 response.
fn produce_error(body: &[u8]) -> anyhow::Result<i16> {
    let mut c = Cursor { buf: body };
    let topics = c.i32()?;
    if topics != 1 {
        bail!("produce response with {topics} topics");
    }
    c.string()?;
    if c.i32()? != 1 {
        bail!("produce response without its partition");
    }
    c.i32()?; // partition
    c.i16()
}

// ---- producing ----

/// One record waiting for its batch to leave: its due time and its value's length.
struct Pending {
    due: Instant,
    value_len: usize,
}

/// A request on the wire: its correlation id and its records.
struct InFlight {
    correlation: i32,
    records: Vec<Pending>,
}

/// Where the wire client sends: one broker, one topic, its partitions.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub partitions: &'a [i32],
}

/// Runs `--producers` wire producers to the end of the window and drains them; returns the
/// summed sender outcome and the records still unacknowledged at the end of the drain.
pub fn run_producers(
    args: &Args,
    target: Target<'_>,
    rec: &Arc<Recorder>,
    window: &Window,
    schedules: Vec<Schedule>,
    stop: &AtomicBool,
) -> anyhow::Result<(SenderOutcome, u64)> {
    let acks = args.acks.as_wire();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for sched in schedules {
            let conn = Conn::open(target.bootstrap)?;
            let reader = conn.stream.try_clone()?;
            let (tx, rx) = mpsc::channel::<InFlight>();
            let drain = sched.drain;
            let maker = RecordMaker::new(
                0x5eed + sched.index,
                args.message_size,
                args.size_dist,
                args.keys,
            );
            let acker = scope.spawn(move || read_acks(reader, rx, rec, window, drain));
            let linger = Duration::from_secs_f64(args.linger_ms / 1e3);
            let sender = Sender {
                conn,
                topic: target.topic,
                partitions: target.partitions,
                acks,
                linger,
                batch_size: args.batch_size,
                in_flight: tx,
            };
            handles.push((
                scope.spawn(move || sender.run(maker, &sched, window, stop)),
                acker,
            ));
        }
        let mut total = SenderOutcome::default();
        let mut unacked = 0;
        for (sender, acker) in handles {
            let o = sender.join().expect("wire sender panicked")?;
            total.sent += o.sent;
            total.unsent += o.unsent;
            total.rejected += o.rejected;
            unacked += acker.join().expect("wire ack reader panicked");
        }
        Ok((total, unacked))
    })
}

/// The sending half of one wire producer.
struct Sender<'a> {
    conn: Conn,
    topic: &'a str,
    partitions: &'a [i32],
    acks: i16,
    linger: Duration,
    batch_size: usize,
    in_flight: mpsc::Sender<InFlight>,
}

impl Sender<'_> {
    /// Sends this producer's share of the schedule, batch by batch, until the window ends.
    fn run(
        mut self,
        mut maker: RecordMaker,
        sched: &Schedule,
        window: &Window,
        stop: &AtomicBool,
    ) -> anyhow::Result<SenderOutcome> {
        let mut out = SenderOutcome::default();
        let give_up = window.measure_until + sched.drain;
        let mut i = 0u64;
        let mut batches = 0usize;
        loop {
            let Some(first_due) = sched.due(window, i) else {
                bail!("the wire client needs a paced --rate");
            };
            if first_due >= window.measure_until || stop.load(Ordering::Relaxed) {
                break;
            }
            if Instant::now() >= give_up {
                out.unsent = sched.remaining(window, i);
                break;
            }
            wait_until(first_due + self.linger);
            let now = Instant::now();
            let partition = self.partitions[batches % self.partitions.len()];
            batches += 1;
            let (mut frame, correlation) = self.conn.start_frame(PRODUCE, 7, self.batch_size);
            let records_len_at = begin_produce(&mut frame, self.topic, partition, self.acks);
            let mut batch =
                BatchWriter::begin(&mut frame, (window.unix_ns(now) / 1_000_000) as i64);
            let mut pending = Vec::new();
            let mut bytes = 0;
            while let Some(due) = sched.due(window, i) {
                if due > now || due >= window.measure_until || bytes >= self.batch_size {
                    break;
                }
                let (key, value) = maker.next(window.unix_ns(due));
                bytes += value.len() + key.map_or(0, <[u8]>::len);
                pending.push(Pending {
                    due,
                    value_len: value.len(),
                });
                batch.push(&mut frame, key, value);
                i += 1;
            }
            batch.finish(&mut frame);
            let records_len = (frame.len() - records_len_at - 4) as i32;
            frame[records_len_at..records_len_at + 4].copy_from_slice(&records_len.to_be_bytes());
            out.sent += pending.len() as u64;
            self.conn.send_frame(frame)?;
            if self.acks != 0 {
                self.in_flight
                    .send(InFlight {
                        correlation,
                        records: pending,
                    })
                    .context("wire ack reader ended early")?;
            }
        }
        Ok(out)
    }
}

/// Reads Produce responses in order and records each record's ack latency; returns how many
/// records were still unacknowledged when the drain time ran out.
fn read_acks(
    mut stream: TcpStream,
    in_flight: mpsc::Receiver<InFlight>,
    rec: &Recorder,
    window: &Window,
    drain: Duration,
) -> u64 {
    let mut waiting: VecDeque<InFlight> = VecDeque::new();
    let give_up = window.measure_until + drain;
    loop {
        // Block for the next request only when none is waiting for its response.
        if waiting.is_empty() {
            match in_flight.recv() {
                Ok(req) => waiting.push_back(req),
                Err(mpsc::RecvError) => return 0,
            }
        }
        waiting.extend(in_flight.try_iter());
        let Some(req) = waiting.pop_front() else {
            continue;
        };
        let left = give_up.saturating_duration_since(Instant::now());
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match read_response(&mut stream) {
            Ok((got, body)) if got == req.correlation => {
                let now = Instant::now();
                let ok = matches!(produce_error(&body), Ok(0));
                for r in &req.records {
                    if ok {
                        let latency = window.contains(r.due).then(|| now - r.due);
                        rec.record(r.value_len, window.contains(now), latency);
                    } else {
                        rec.error();
                    }
                }
                if !ok {
                    eprintln!("wire producer: produce refused: {:?}", produce_error(&body));
                }
            }
            result => {
                let unacked =
                    req.records.len() + waiting.iter().map(|w| w.records.len()).sum::<usize>();
                eprintln!(
                    "wire producer: no ack ({:?}); {unacked} records unacknowledged",
                    result.err()
                );
                return unacked as u64
                    + in_flight
                        .try_iter()
                        .map(|w| w.records.len() as u64)
                        .sum::<u64>();
            }
        }
    }
}

/// Sleeps until `due`, never spinning (the client shares its core with the broker's peer).
fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

// ---- consuming ----

/// The end offset of each partition (ListOffsets v1, latest).
fn log_ends(conn: &mut Conn, topic: &str, partitions: &[i32]) -> anyhow::Result<Vec<i64>> {
    let mut b = Vec::new();
    put_i32(&mut b, -1); // replica id
    put_i32(&mut b, 1);
    put_str(&mut b, topic);
    put_i32(&mut b, partitions.len() as i32);
    for &p in partitions {
        put_i32(&mut b, p);
        put_i64(&mut b, -1); // latest
    }
    let body = conn.call(LIST_OFFSETS, 1, &b)?;
    let mut c = Cursor { buf: &body };
    let mut ends = vec![0; partitions.len()];
    for _ in 0..c.i32()? {
        c.string()?;
        for _ in 0..c.i32()? {
            let (p, error) = (c.i32()?, c.i16()?);
            c.i64()?; // timestamp
            let offset = c.i64()?;
            if error != 0 {
                bail!("ListOffsets of partition {p}: error {error}");
            }
            if let Some(k) = partitions.iter().position(|&q| q == p) {
                ends[k] = offset;
            }
        }
    }
    Ok(ends)
}

fn fetch_body(topic: &str, partitions: &[i32], offsets: &[i64]) -> Vec<u8> {
    let mut b = Vec::new();
    put_i32(&mut b, -1); // replica id
    put_i32(&mut b, FETCH_MAX_WAIT_MS);
    put_i32(&mut b, 1); // min bytes
    put_i32(&mut b, FETCH_MAX_BYTES);
    b.push(0); // read uncommitted
    put_i32(&mut b, 1);
    put_str(&mut b, topic);
    put_i32(&mut b, partitions.len() as i32);
    for (&p, &offset) in partitions.iter().zip(offsets) {
        put_i32(&mut b, p);
        put_i64(&mut b, offset);
        put_i32(&mut b, PARTITION_MAX_BYTES);
    }
    b
}

/// Consumes `partitions` from their ends until `stop`, recording each record's end-to-end
/// latency; returns when it stopped.
pub fn run_consumer(
    target: Target<'_>,
    rec: &Recorder,
    window: &Window,
    stop: &AtomicBool,
) -> anyhow::Result<Instant> {
    let Target {
        bootstrap,
        topic,
        partitions,
    } = target;
    let mut conn = Conn::open(bootstrap)?;
    let mut offsets = log_ends(&mut conn, topic, partitions)?;
    while !stop.load(Ordering::Relaxed) {
        let body = conn.call(FETCH, 4, &fetch_body(topic, partitions, &offsets))?;
        let mut c = Cursor { buf: &body };
        c.i32()?; // throttle time
        for _ in 0..c.i32()? {
            c.string()?;
            for _ in 0..c.i32()? {
                let p = c.i32()?;
                let error = c.i16()?;
                c.i64()?; // high watermark
                c.i64()?; // last stable offset
                let aborted = c.i32()?;
                for _ in 0..aborted.max(0) {
                    c.take(16)?;
                }
                let len = c.i32()?;
                let records = c.take(len.max(0) as usize)?;
                let k = partitions
                    .iter()
                    .position(|&q| q == p)
                    .context("fetch response for a partition not asked for")?;
                if error != 0 {
                    rec.error();
                    eprintln!("wire consumer: partition {p}: error {error}");
                    continue;
                }
                offsets[k] = read_batches(records, offsets[k], rec, window)?;
            }
        }
    }
    Ok(Instant::now())
}

/// Records every record at or after `from` in the whole batches of `bytes` (a cut batch at
/// the end waits for the next fetch); returns the next offset to fetch.
fn read_batches(
    mut bytes: &[u8],
    from: i64,
    rec: &Recorder,
    window: &Window,
) -> anyhow::Result<i64> {
    let mut next = from;
    while bytes.len() >= 12 {
        let base = i64::from_be_bytes(bytes[..8].try_into()?);
        let len = i32::from_be_bytes(bytes[8..12].try_into()?);
        let total = 12 + len.max(0) as usize;
        if len < 49 || bytes.len() < total {
            break;
        }
        let mut c = Cursor {
            buf: &bytes[12..total],
        };
        c.i32()?; // partition leader epoch
        if c.i8()? != 2 {
            bail!("record batch of another magic at offset {base}");
        }
        c.take(4)?; // crc
        let attributes = c.i16()?;
        let last_delta = c.i32()?;
        c.take(8 + 8 + 8 + 2 + 4)?;
        let count = c.i32()?;
        let control = attributes & 0x20 != 0;
        if attributes & 0x07 != 0 {
            bail!("compressed batch at offset {base}: the wire client produces and reads none");
        }
        for _ in 0..if control { 0 } else { count } {
            let len = c.varint()?;
            let mut r = Cursor {
                buf: c.take(len.max(0) as usize)?,
            };
            r.i8()?;
            r.varint()?; // timestamp delta
            let offset = base + r.varint()?;
            r.var_bytes()?; // key
            let value = r.var_bytes()?.unwrap_or_default();
            if offset >= from {
                consume::record_arrival(rec, window, LatencyOf::DueInWindow, value);
            }
        }
        next = next.max(base + i64::from(last_delta) + 1);
        bytes = &bytes[total..];
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `records` (key, value), stamped `timestamp_ms`, as the sender writes it.
    fn encode_batch(records: &[(Option<Vec<u8>>, Vec<u8>)], timestamp_ms: i64) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut batch = BatchWriter::begin(&mut buf, timestamp_ms);
        for (key, value) in records {
            batch.push(&mut buf, key.as_deref(), value);
        }
        batch.finish(&mut buf);
        buf
    }

    #[test]
    fn a_batch_reads_back_as_written() {
        let records = vec![
            (None, b"one".to_vec()),
            (Some(b"k".to_vec()), b"two".to_vec()),
        ];
        let batch = encode_batch(&records, 1_700_000_000_000);
        // The CRC covers attributes to the end, as a broker checks it.
        let crc = u32::from_be_bytes(batch[17..21].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&batch[21..]));
        assert_eq!(
            i32::from_be_bytes(batch[8..12].try_into().unwrap()) as usize,
            batch.len() - 12
        );
        let rec = Recorder::default();
        let window = Window::new(Duration::ZERO, Duration::from_secs(60));
        assert_eq!(read_batches(&batch, 0, &rec, &window).unwrap(), 2);
        // Both values lack the timestamp header: counted as foreign, not lost.
        assert_eq!(rec.total_msgs.load(Ordering::Relaxed), 2);
        assert_eq!(rec.foreign.load(Ordering::Relaxed), 2);
        // Records before `from` are skipped; a cut batch waits.
        assert_eq!(read_batches(&batch, 1, &rec, &window).unwrap(), 2);
        assert_eq!(rec.total_msgs.load(Ordering::Relaxed), 3);
        assert_eq!(
            read_batches(&batch[..batch.len() - 1], 0, &rec, &window).unwrap(),
            0
        );
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Cursor { buf: &b }.varint().unwrap(), v);
            assert_eq!(varint_len(v), b.len(), "{v}");
        }
    }
}
