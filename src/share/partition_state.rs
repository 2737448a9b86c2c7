//! One share group's state of one partition (KIP-932's share-partition): the share-partition
//! start offset (every record below it is done with), and each record from there up to the
//! next record never delivered, with its state (available, acquired by a member until a
//! deadline, acknowledged, archived) and how often it was delivered.
//!
//! Pure logic, time passed in; owned by the shard that leads the partition, next to its log.
//! The in-flight window never exceeds `group.share.partition.max.record.locks` records, so
//! the memory a group can make a partition hold is bounded.

use std::collections::VecDeque;
use std::rc::Rc;

/// Acknowledgement types of ShareFetch and ShareAcknowledge v1.
pub mod ack_type {
    /// The offset holds no record (compaction, a control batch): done with.
    pub const GAP: i8 = 0;
    /// Processed: never delivered again.
    pub const ACCEPT: i8 = 1;
    /// Not processed: available again (archived at the delivery limit).
    pub const RELEASE: i8 = 2;
    /// Unprocessable: archived, never delivered again.
    pub const REJECT: i8 = 3;
}

/// The state of one offset of the in-flight window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    /// May be delivered (again).
    Available,
    /// Delivered to `owner`, locked until `deadline_ms`.
    Acquired {
        /// The member that holds it.
        owner: Rc<str>,
        /// When the lock runs out.
        deadline_ms: i64,
    },
    /// Accepted by a consumer.
    Acknowledged,
    /// Rejected, a gap, or past the delivery limit.
    Archived,
}

impl RecordState {
    fn is_done(&self) -> bool {
        matches!(self, Self::Acknowledged | Self::Archived)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct InFlight {
    state: RecordState,
    deliveries: u16,
}

/// The limits a share partition keeps, from the `group.share.*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `group.share.record.lock.duration.ms`.
    pub lock_ms: i64,
    /// `group.share.delivery.count.limit`.
    pub delivery_limit: u16,
    /// `group.share.partition.max.record.locks`: the longest in-flight window.
    pub max_in_flight: usize,
}

/// One batch of the log as acquisition sees it: its offsets and whether it is a control
/// batch (transaction markers are never delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    /// First offset of the batch.
    pub base: i64,
    /// Last offset of the batch.
    pub last: i64,
    /// A control batch.
    pub control: bool,
}

/// Who acquires, from where, when, under which limits.
#[derive(Debug, Clone, Copy)]
pub struct Acquirer<'a> {
    /// The member the records are locked to.
    pub member: &'a Rc<str>,
    /// The offset acquisition reads from ([`SharePartitionState::next_candidate`]).
    pub from: i64,
    /// Now, for the lock deadline.
    pub now_ms: i64,
    /// The group's limits.
    pub limits: Limits,
}

/// A run of offsets acquired in one go with the same delivery count, as ShareFetch's
/// `AcquiredRecords` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredRange {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// How many times these records have been delivered, this delivery included.
    pub deliveries: u16,
}

/// Why an acknowledgement was refused; it changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Malformed: first past last, an unknown type, or a type count that is neither 1 nor
    /// one per offset (INVALID_REQUEST).
    #[error("malformed acknowledgement batch")]
    Malformed,
    /// An offset not acquired by this member (any more): INVALID_RECORD_STATE.
    #[error("record not acquired by this member")]
    NotAcquired,
}

/// A run of offsets with one durable state, as `__share_group_state` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRange {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// Kafka's delivery states: 0 available (acquired counts as available after a restart),
    /// 2 acknowledged, 4 archived.
    pub state: u8,
    /// Deliveries so far.
    pub deliveries: u16,
}

/// Durable state code of an available (or acquired) record.
pub const STATE_AVAILABLE: u8 = 0;
/// Durable state code of an acknowledged record.
pub const STATE_ACKNOWLEDGED: u8 = 2;
/// Durable state code of an archived record.
pub const STATE_ARCHIVED: u8 = 4;

/// What survives a restart: the start offset and the in-flight window as runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The share-partition start offset.
    pub start: i64,
    /// The in-flight window, in offset order, without holes.
    pub ranges: Vec<StateRange>,
}

/// One share group's state of one partition.
#[derive(Debug, Clone)]
pub struct SharePartitionState {
    start: i64,
    window: VecDeque<InFlight>,
    /// Bumped at every change a restart must see (acknowledgements, releases, archiving).
    version: u64,
}

impl SharePartitionState {
    /// A group starting to read the partition at `start`.
    pub fn new(start: i64) -> Self {
        Self {
            start,
            window: VecDeque::new(),
            version: 0,
        }
    }

    /// A group starting to read the partition at `start`, with that start not yet persisted
    /// (version 1 against the file's 0).
    pub fn initialized(start: i64) -> Self {
        Self {
            version: 1,
            ..Self::new(start)
        }
    }

    /// The share-partition start offset: every record below it is acknowledged or archived.
    pub fn start_offset(&self) -> i64 {
        self.start
    }

    /// The next offset never delivered (the share-partition end offset).
    pub fn end_offset(&self) -> i64 {
        self.start + self.window.len() as i64
    }

    /// The durable version: it moves with every change [`Self::snapshot`] shows.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Records acquired right now, by anyone.
    pub fn acquired_count(&self) -> usize {
        self.window
            .iter()
            .filter(|r| matches!(r.state, RecordState::Acquired { .. }))
            .count()
    }

    /// The state of `offset`, if it is in the window.
    pub fn state_of(&self, offset: i64) -> Option<&RecordState> {
        self.slot(offset).map(|r| &r.state)
    }

    /// Deliveries of `offset` so far, if it is in the window.
    pub fn deliveries_of(&self, offset: i64) -> Option<u16> {
        self.slot(offset).map(|r| r.deliveries)
    }

    fn slot(&self, offset: i64) -> Option<&InFlight> {
        let index = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        self.window.get(index)
    }

    fn index(&self, offset: i64) -> Option<usize> {
        let index = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        (index < self.window.len()).then_some(index)
    }

    /// Earliest lock deadline, to wake a waiting fetch when a record comes back.
    pub fn next_lock_deadline(&self) -> Option<i64> {
        self.window
            .iter()
            .filter_map(|r| match r.state {
                RecordState::Acquired { deadline_ms, .. } => Some(deadline_ms),
                _ => None,
            })
            .min()
    }

    /// Locks past their deadline give their records back (archived at the delivery limit).
    /// Returns whether anything changed.
    pub fn expire_locks(&mut self, now_ms: i64, limits: Limits) -> bool {
        let mut changed = false;
        for record in &mut self.window {
            if let RecordState::Acquired { deadline_ms, .. } = record.state
                && deadline_ms <= now_ms
            {
                record.state = released(record.deliveries, limits);
                changed = true;
            }
        }
        if changed {
            self.version += 1;
            self.trim();
        }
        changed
    }

    /// Records below `log_start` are gone from the log (retention, DeleteRecords): they
    /// leave the window. Returns whether the start offset moved.
    pub fn advance_to(&mut self, log_start: i64) -> bool {
        if log_start <= self.start {
            return false;
        }
        let drop = usize::try_from(log_start - self.start)
            .unwrap_or(usize::MAX)
            .min(self.window.len());
        self.window.drain(..drop);
        self.start = log_start;
        self.version += 1;
        true
    }

    /// The offset acquisition should read from: the first available record of the window,
    /// else the end when records below `high_watermark` were never delivered and the window
    /// has room. `None` when there is nothing to hand out.
    pub fn next_candidate(&self, high_watermark: i64, limits: Limits) -> Option<i64> {
        if let Some(i) = self
            .window
            .iter()
            .position(|r| r.state == RecordState::Available)
        {
            return Some(self.start + i as i64);
        }
        let end = self.end_offset();
        (end < high_watermark && self.window.len() < limits.max_in_flight).then_some(end)
    }

    /// Acquires for `who.member` what `batch` holds from `who.from` on, at most `*budget`
    /// records; appends what it took to `acquired` and lowers the budget. Returns whether the
    /// batch has a record acquired now (so it goes into the response).
    pub fn acquire_batch(
        &mut self,
        batch: BatchSpan,
        who: &Acquirer<'_>,
        budget: &mut usize,
        acquired: &mut Vec<AcquiredRange>,
    ) -> bool {
        let Acquirer {
            member,
            from,
            now_ms,
            limits,
        } = *who;
        if batch.last < from.max(self.start) || !self.open_gap_to(batch.base, limits) {
            return false;
        }
        if batch.control {
            self.archive_control(batch, limits);
            return false;
        }
        let mut took = false;
        let deadline_ms = now_ms.saturating_add(limits.lock_ms);
        for offset in batch.base.max(from).max(self.start)..=batch.last {
            if *budget == 0 {
                break;
            }
            let deliveries = match self.index(offset) {
                Some(i) if self.window[i].state == RecordState::Available => {
                    let record = &mut self.window[i];
                    record.deliveries = record.deliveries.saturating_add(1);
                    record.state = RecordState::Acquired {
                        owner: member.clone(),
                        deadline_ms,
                    };
                    record.deliveries
                }
                Some(_) => continue,
                None if self.window.len() < limits.max_in_flight => {
                    self.window.push_back(InFlight {
                        state: RecordState::Acquired {
                            owner: member.clone(),
                            deadline_ms,
                        },
                        deliveries: 1,
                    });
                    1
                }
                None => break,
            };
            *budget -= 1;
            took = true;
            push_acquired(acquired, offset, deliveries);
        }
        took
    }

    /// Offsets between the window's end and `base` hold no record (compacted away): they
    /// enter the window archived, or the window jumps when it is empty. False when the gap
    /// does not fit the window now.
    fn open_gap_to(&mut self, base: i64, limits: Limits) -> bool {
        let end = self.end_offset();
        if base <= end {
            return true;
        }
        if self.window.is_empty() {
            self.start = base;
            self.version += 1;
            return true;
        }
        let gap = usize::try_from(base - end).unwrap_or(usize::MAX);
        if self.window.len().saturating_add(gap) >= limits.max_in_flight {
            return false;
        }
        self.window.extend((0..gap).map(|_| InFlight {
            state: RecordState::Archived,
            deliveries: 0,
        }));
        self.version += 1;
        true
    }

    fn archive_control(&mut self, batch: BatchSpan, limits: Limits) {
        for offset in batch.base.max(self.start)..=batch.last {
            match self.index(offset) {
                Some(i) if self.window[i].state == RecordState::Available => {
                    self.window[i].state = RecordState::Archived;
                }
                Some(_) => {}
                None if self.window.len() < limits.max_in_flight => {
                    self.window.push_back(InFlight {
                        state: RecordState::Archived,
                        deliveries: 0,
                    });
                }
                None => break,
            }
        }
        self.version += 1;
        self.trim();
    }

    /// Applies one acknowledgement batch of `member`: `types` holds one type for the whole
    /// range or one per offset. All or nothing: a refused batch changes no record.
    pub fn acknowledge(
        &mut self,
        member: &str,
        first: i64,
        last: i64,
        types: &[i8],
        limits: Limits,
    ) -> Result<(), AckError> {
        let count = last
            .checked_sub(first)
            .and_then(|d| usize::try_from(d).ok())
            .map(|d| d + 1)
            .ok_or(AckError::Malformed)?;
        if (types.len() != 1 && types.len() != count)
            || types
                .iter()
                .any(|t| !(ack_type::GAP..=ack_type::REJECT).contains(t))
        {
            return Err(AckError::Malformed);
        }
        let from = self.index(first).ok_or(AckError::NotAcquired)?;
        if from + count > self.window.len() {
            return Err(AckError::NotAcquired);
        }
        let held = |r: &InFlight| matches!(&r.state, RecordState::Acquired { owner, .. } if &**owner == member);
        if !self.window.range(from..from + count).all(held) {
            return Err(AckError::NotAcquired);
        }
        for (k, record) in self.window.range_mut(from..from + count).enumerate() {
            let kind = if types.len() == 1 { types[0] } else { types[k] };
            record.state = match kind {
                ack_type::ACCEPT => RecordState::Acknowledged,
                ack_type::RELEASE => released(record.deliveries, limits),
                _ => RecordState::Archived,
            };
        }
        self.version += 1;
        self.trim();
        Ok(())
    }

    /// Gives back every record `member` holds (its share session closed or was replaced).
    /// Returns whether anything changed.
    pub fn release_member(&mut self, member: &str, limits: Limits) -> bool {
        let mut changed = false;
        for record in &mut self.window {
            if matches!(&record.state, RecordState::Acquired { owner, .. } if &**owner == member) {
                record.state = released(record.deliveries, limits);
                changed = true;
            }
        }
        if changed {
            self.version += 1;
            self.trim();
        }
        changed
    }

    /// Done records at the front leave the window; the start offset follows.
    fn trim(&mut self) {
        while self.window.front().is_some_and(|r| r.state.is_done()) {
            self.window.pop_front();
            self.start += 1;
        }
    }

    /// The durable view: acquired records count as available.
    pub fn snapshot(&self) -> Snapshot {
        let mut ranges: Vec<StateRange> = Vec::new();
        for (i, record) in self.window.iter().enumerate() {
            let offset = self.start + i as i64;
            let state = match record.state {
                RecordState::Available | RecordState::Acquired { .. } => STATE_AVAILABLE,
                RecordState::Acknowledged => STATE_ACKNOWLEDGED,
                RecordState::Archived => STATE_ARCHIVED,
            };
            match ranges.last_mut() {
                Some(r) if r.state == state && r.deliveries == record.deliveries => {
                    r.last = offset;
                }
                _ => ranges.push(StateRange {
                    first: offset,
                    last: offset,
                    state,
                    deliveries: record.deliveries,
                }),
            }
        }
        Snapshot {
            start: self.start,
            ranges,
        }
    }

    /// The state a snapshot of `version` describes, carrying on from that version (so the
    /// next change is written as newer than anything in the file); runs past `max_in_flight`
    /// records are cut (a stored state cannot make the broker hold more than the limit).
    pub fn restore(snapshot: &Snapshot, version: u64, limits: Limits) -> Self {
        // Offsets are never negative, and the window's end must stay representable.
        let start = snapshot.start.clamp(0, i64::MAX / 2);
        let mut state = Self {
            version,
            ..Self::new(start)
        };
        let mut expected = start;
        for range in &snapshot.ranges {
            let len = range
                .last
                .checked_sub(range.first)
                .and_then(|d| usize::try_from(d).ok())
                .and_then(|d| d.checked_add(1));
            let Some(len) = len.filter(|_| range.first == expected) else {
                break;
            };
            if state.window.len().saturating_add(len) > limits.max_in_flight {
                break;
            }
            let record_state = match range.state {
                STATE_ACKNOWLEDGED => RecordState::Acknowledged,
                STATE_ARCHIVED => RecordState::Archived,
                _ => RecordState::Available,
            };
            state.window.extend((0..len).map(|_| InFlight {
                state: record_state.clone(),
                deliveries: range.deliveries,
            }));
            expected = range.last + 1;
        }
        state.trim();
        state
    }
}

/// What a record becomes when its holder gives it up: available, or archived once it has
/// been delivered `delivery_limit` times.
fn released(deliveries: u16, limits: Limits) -> RecordState {
    if deliveries >= limits.delivery_limit {
        RecordState::Archived
    } else {
        RecordState::Available
    }
}

fn push_acquired(acquired: &mut Vec<AcquiredRange>, offset: i64, deliveries: u16) {
    match acquired.last_mut() {
        Some(r) if r.last + 1 == offset && r.deliveries == deliveries => r.last = offset,
        _ => acquired.push(AcquiredRange {
            first: offset,
            last: offset,
            deliveries,
        }),
    }
}

#[cfg(test)]
#[path = "partition_state_tests.rs"]
mod tests;
