use super::*;

const LIMITS: Limits = Limits {
    lock_ms: 1_000,
    delivery_limit: 3,
    max_in_flight: 100,
};

fn member(name: &str) -> Rc<str> {
    Rc::from(name)
}

fn batch(base: i64, last: i64) -> BatchSpan {
    BatchSpan {
        base,
        last,
        control: false,
    }
}

fn take(
    state: &mut SharePartitionState,
    span: BatchSpan,
    who: &Rc<str>,
    now: i64,
    budget: usize,
) -> Vec<AcquiredRange> {
    let mut budget = budget;
    let mut acquired = Vec::new();
    let from = state.next_candidate(i64::MAX, LIMITS).unwrap_or(span.base);
    let acquirer = Acquirer {
        member: who,
        from,
        now_ms: now,
        limits: LIMITS,
    };
    state.acquire_batch(span, &acquirer, &mut budget, &mut acquired);
    acquired
}

#[test]
fn two_members_get_disjoint_records_and_accepts_move_the_start() {
    let (a, b) = (member("a"), member("b"));
    let mut s = SharePartitionState::new(0);
    assert_eq!(
        take(&mut s, batch(0, 9), &a, 0, 5),
        vec![AcquiredRange {
            first: 0,
            last: 4,
            deliveries: 1
        }]
    );
    assert_eq!(
        take(&mut s, batch(5, 9), &b, 0, 100),
        vec![AcquiredRange {
            first: 5,
            last: 9,
            deliveries: 1
        }]
    );
    assert_eq!(s.next_candidate(10, LIMITS), None);
    s.acknowledge("b", 5, 9, &[ack_type::ACCEPT], LIMITS)
        .unwrap();
    assert_eq!(s.start_offset(), 0, "a still holds 0-4");
    s.acknowledge("a", 0, 4, &[ack_type::ACCEPT], LIMITS)
        .unwrap();
    assert_eq!((s.start_offset(), s.end_offset()), (10, 10));
}

#[test]
fn only_the_holder_may_acknowledge_and_a_refused_batch_changes_nothing() {
    let a = member("a");
    let mut s = SharePartitionState::new(0);
    take(&mut s, batch(0, 3), &a, 0, 10);
    assert_eq!(
        s.acknowledge("b", 0, 3, &[ack_type::ACCEPT], LIMITS),
        Err(AckError::NotAcquired)
    );
    assert_eq!(
        s.acknowledge("a", 0, 4, &[ack_type::ACCEPT], LIMITS),
        Err(AckError::NotAcquired)
    );
    assert_eq!(
        s.acknowledge("a", 3, 0, &[ack_type::ACCEPT], LIMITS),
        Err(AckError::Malformed)
    );
    assert_eq!(
        s.acknowledge("a", 0, 3, &[1, 1], LIMITS),
        Err(AckError::Malformed)
    );
    assert_eq!(
        s.acknowledge("a", 0, 3, &[9], LIMITS),
        Err(AckError::Malformed)
    );
    assert_eq!(s.acquired_count(), 4);
    s.acknowledge("a", 0, 3, &[1, 2, 3, 0], LIMITS).unwrap();
    assert_eq!(s.state_of(1), Some(&RecordState::Available));
    assert_eq!(s.start_offset(), 1);
    assert_eq!(
        s.acknowledge("a", 2, 2, &[ack_type::ACCEPT], LIMITS),
        Err(AckError::NotAcquired),
        "archived stays archived"
    );
}

#[test]
fn an_expired_lock_makes_the_record_available_and_the_delivery_limit_archives_it() {
    let (a, b) = (member("a"), member("b"));
    let mut s = SharePartitionState::new(0);
    take(&mut s, batch(0, 0), &a, 0, 10);
    assert_eq!(s.next_lock_deadline(), Some(1_000));
    assert!(!s.expire_locks(999, LIMITS));
    assert!(s.expire_locks(1_000, LIMITS));
    assert_eq!(
        take(&mut s, batch(0, 0), &b, 1_000, 10),
        vec![AcquiredRange {
            first: 0,
            last: 0,
            deliveries: 2
        }]
    );
    s.acknowledge("b", 0, 0, &[ack_type::RELEASE], LIMITS)
        .unwrap();
    assert_eq!(take(&mut s, batch(0, 0), &a, 2_000, 10)[0].deliveries, 3);
    assert!(s.expire_locks(3_000, LIMITS));
    assert_eq!(s.start_offset(), 1, "third delivery was the last: archived");
}

#[test]
fn the_window_never_grows_past_the_record_lock_limit() {
    let a = member("a");
    let limits = Limits {
        max_in_flight: 10,
        ..LIMITS
    };
    let mut s = SharePartitionState::new(0);
    let mut budget = 100;
    let mut acquired = Vec::new();
    let acquirer = Acquirer {
        member: &a,
        from: 0,
        now_ms: 0,
        limits,
    };
    s.acquire_batch(batch(0, 49), &acquirer, &mut budget, &mut acquired);
    assert_eq!(
        acquired,
        vec![AcquiredRange {
            first: 0,
            last: 9,
            deliveries: 1
        }]
    );
    assert_eq!(s.next_candidate(50, limits), None);
    s.acknowledge("a", 0, 4, &[ack_type::ACCEPT], limits)
        .unwrap();
    assert_eq!(s.next_candidate(50, limits), Some(10));
}

#[test]
fn control_batches_and_compaction_gaps_are_never_delivered() {
    let a = member("a");
    let mut s = SharePartitionState::new(0);
    take(&mut s, batch(0, 1), &a, 0, 10);
    let marker = BatchSpan {
        base: 2,
        last: 2,
        control: true,
    };
    let mut budget = 10;
    let mut acquired = Vec::new();
    let at = |from| Acquirer {
        member: &a,
        from,
        now_ms: 0,
        limits: LIMITS,
    };
    assert!(!s.acquire_batch(marker, &at(2), &mut budget, &mut acquired));
    assert!(s.acquire_batch(batch(7, 8), &at(3), &mut budget, &mut acquired));
    assert_eq!(
        acquired,
        vec![AcquiredRange {
            first: 7,
            last: 8,
            deliveries: 1
        }]
    );
    s.acknowledge("a", 0, 1, &[ack_type::ACCEPT], LIMITS)
        .unwrap();
    assert_eq!(
        s.start_offset(),
        7,
        "the marker and the gap 3-6 are done with"
    );
}

#[test]
fn a_closed_session_releases_its_records_and_a_snapshot_restores_the_window() {
    let (a, b) = (member("a"), member("b"));
    let mut s = SharePartitionState::new(5);
    take(&mut s, batch(5, 7), &a, 0, 10);
    take(&mut s, batch(8, 9), &b, 0, 10);
    s.acknowledge("b", 8, 8, &[ack_type::ACCEPT], LIMITS)
        .unwrap();
    assert!(s.release_member("a", LIMITS));
    assert_eq!(s.state_of(5), Some(&RecordState::Available));
    let restored = SharePartitionState::restore(&s.snapshot(), s.version(), LIMITS);
    assert_eq!(
        restored.version(),
        s.version(),
        "a restored state carries on from its version"
    );
    assert_eq!(restored.start_offset(), 5);
    assert_eq!(restored.end_offset(), 10);
    assert_eq!(restored.state_of(8), Some(&RecordState::Acknowledged));
    assert_eq!(
        restored.state_of(9),
        Some(&RecordState::Available),
        "b's lock does not survive"
    );
    assert_eq!(restored.deliveries_of(5), Some(1));
}

#[test]
fn retention_moves_the_start_past_records_that_are_gone() {
    let a = member("a");
    let mut s = SharePartitionState::new(0);
    take(&mut s, batch(0, 9), &a, 0, 10);
    assert!(s.advance_to(4));
    assert_eq!((s.start_offset(), s.end_offset()), (4, 10));
    assert!(s.advance_to(20));
    assert_eq!((s.start_offset(), s.end_offset()), (20, 20));
}
