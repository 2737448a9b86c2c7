//! State-machine tests of the transaction coordinator: every transition, fencing,
//! timeouts and replay of the records it emits.

use super::*;

const MAX_TIMEOUT: i32 = 900_000;

fn coordinator() -> TxnCoordinator {
    TxnCoordinator::new(MAX_TIMEOUT)
}

fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

/// Inits `id` and returns (producer id, epoch).
fn init(c: &mut TxnCoordinator, id: &str, now: i64) -> (i64, i16) {
    match c.init_producer_id(id, 10_000, None, now, || Some(42)) {
        Ok(InitOutcome::Ready {
            producer_id,
            producer_epoch,
            ..
        }) => (producer_id, producer_epoch),
        other => panic!("init did not complete: {other:?}"),
    }
}

#[test]
fn commit_walks_ongoing_prepare_complete() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    assert_eq!((pid, epoch), (42, 0));
    assert_eq!(c.get("t").map(|m| m.status), Some(TxnStatus::Empty));
    let added = c.add_partitions("t", pid, epoch, &parts(&[("a", 0), ("b", 1)]), 5);
    assert!(matches!(added, Ok(Some(_))));
    assert_eq!(c.get("t").map(|m| m.status), Some(TxnStatus::Ongoing));
    // Adding the same partitions again changes nothing and persists nothing.
    assert_eq!(
        c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 6),
        Ok(None)
    );
    let (_, job) = c
        .end_txn("t", pid, epoch, true, 7)
        .expect("commit accepted")
        .expect("a transaction was open");
    assert!(job.commit);
    assert_eq!(job.partitions, parts(&[("a", 0), ("b", 1)]));
    assert_eq!(c.get("t").map(|m| m.status), Some(TxnStatus::PrepareCommit));
    // Markers still being written: new work must wait.
    assert_eq!(
        c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 8),
        Err(TxnError::ConcurrentTransactions)
    );
    assert!(c.complete("t", 9).is_some());
    let meta = c.get("t").expect("exists");
    assert_eq!(meta.status, TxnStatus::CompleteCommit);
    assert!(meta.partitions.is_empty());
    // A retried EndTxn of the same outcome is fine; the opposite one is not.
    assert_eq!(c.end_txn("t", pid, epoch, true, 10), Ok(None));
    assert_eq!(
        c.end_txn("t", pid, epoch, false, 10),
        Err(TxnError::InvalidTxnState)
    );
    // The next transaction starts afresh.
    assert!(matches!(
        c.add_partitions("t", pid, epoch, &parts(&[("c", 0)]), 11),
        Ok(Some(_))
    ));
    assert_eq!(c.get("t").map(|m| m.partitions.len()), Some(1));
}

#[test]
fn abort_writes_abort_markers() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 1)
        .expect("added");
    let (_, job) = c
        .end_txn("t", pid, epoch, false, 2)
        .expect("abort accepted")
        .expect("open");
    assert!(!job.commit);
    c.complete("t", 3);
    assert_eq!(c.get("t").map(|m| m.status), Some(TxnStatus::CompleteAbort));
}

#[test]
fn reinit_fences_the_old_producer_and_aborts_its_transaction() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 1)
        .expect("added");
    let outcome = c
        .init_producer_id("t", 10_000, None, 2, || Some(99))
        .expect("re-init accepted");
    let InitOutcome::AbortFirst { job, .. } = outcome else {
        panic!("an open transaction must be aborted first: {outcome:?}");
    };
    assert!(!job.commit);
    assert_eq!(
        job.producer_epoch,
        epoch + 1,
        "markers carry the fencing epoch"
    );
    // Retried while markers are pending.
    assert_eq!(
        c.init_producer_id("t", 10_000, None, 3, || Some(99)),
        Err(TxnError::ConcurrentTransactions)
    );
    c.complete("t", 4);
    let (pid2, epoch2) = init(&mut c, "t", 5);
    assert_eq!((pid2, epoch2), (pid, epoch + 2));
    // The old producer is fenced everywhere.
    assert_eq!(
        c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 6),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        c.end_txn("t", pid, epoch, true, 6),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        c.init_producer_id("t", 10_000, Some((pid, epoch)), 7, || None),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        c.add_partitions("t", 7, epoch2, &parts(&[("a", 0)]), 6),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn timeouts_abort_with_an_epoch_bump() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 1_000)
        .expect("added");
    assert_eq!(c.next_deadline_ms(), Some(11_000));
    assert!(c.expire(10_999).is_empty());
    let expired = c.expire(11_000);
    assert_eq!(expired.len(), 1);
    assert!(!expired[0].1.commit);
    assert_eq!(expired[0].1.producer_epoch, epoch + 1);
    assert_eq!(c.next_deadline_ms(), None);
    assert_eq!(
        c.end_txn("t", pid, epoch, true, 11_001),
        Err(TxnError::ProducerFenced)
    );
    // KIP-360: the timed-out producer resumes with its old epoch once the abort completed.
    assert_eq!(
        c.init_producer_id("t", 10_000, Some((pid, epoch)), 11_002, || None),
        Err(TxnError::ConcurrentTransactions)
    );
    c.complete("t", 11_003);
    let resumed = c
        .init_producer_id("t", 10_000, Some((pid, epoch)), 11_004, || None)
        .expect("the timed-out producer may continue");
    assert!(matches!(
        resumed,
        InitOutcome::Ready { producer_id, producer_epoch, .. } if producer_id == pid && producer_epoch == epoch + 2
    ));
    // Only once: the old epoch is fenced again afterwards.
    assert_eq!(
        c.init_producer_id("t", 10_000, Some((pid, epoch)), 11_005, || None),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn timeout_limits_are_enforced() {
    let mut c = coordinator();
    assert_eq!(
        c.init_producer_id("t", MAX_TIMEOUT + 1, None, 0, || Some(1)),
        Err(TxnError::InvalidTimeout)
    );
    assert_eq!(
        c.init_producer_id("t", 0, None, 0, || Some(1)),
        Err(TxnError::InvalidTimeout)
    );
}

#[test]
fn replaying_emitted_records_rebuilds_the_same_state() {
    let mut c = coordinator();
    let mut log: Vec<TxnRecord> = Vec::new();
    let InitOutcome::Ready { record, .. } = c
        .init_producer_id("t", 10_000, None, 0, || Some(5))
        .expect("init")
    else {
        panic!("fresh id is ready at once");
    };
    log.push(record);
    log.extend(
        c.add_partitions("t", 5, 0, &parts(&[("a", 3)]), 1)
            .expect("add"),
    );
    let (record, _) = c.end_txn("t", 5, 0, true, 2).expect("end").expect("open");
    log.push(record);
    let mut replayed = coordinator();
    for r in &log {
        replayed
            .replay(&r.key, r.value.as_deref())
            .expect("own records decode");
    }
    assert_eq!(replayed.get("t"), c.get("t"));
    // A crash between PrepareCommit and CompleteCommit: markers must be written again.
    let unfinished = replayed.unfinished();
    assert_eq!(unfinished.len(), 1);
    assert!(unfinished[0].commit);
    assert_eq!(unfinished[0].partitions, parts(&[("a", 3)]));
    // Tombstones remove ids.
    replayed
        .replay(&log[0].key, None)
        .expect("tombstone decodes");
    assert!(replayed.get("t").is_none());
}

#[test]
fn only_added_partitions_of_the_current_producer_verify() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    let a0 = ("a".to_string(), 0);
    assert_eq!(
        c.verify_partition("t", pid, epoch, &a0),
        Err(TxnError::InvalidTxnState),
        "nothing added yet"
    );
    c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 1)
        .expect("added");
    assert_eq!(c.verify_partition("t", pid, epoch, &a0), Ok(()));
    assert_eq!(
        c.verify_partition("t", pid, epoch, &("a".to_string(), 1)),
        Err(TxnError::InvalidTxnState)
    );
    assert_eq!(
        c.verify_partition("t", pid, epoch + 1, &a0),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        c.verify_partition("t", pid + 1, epoch, &a0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        c.verify_partition("unknown", pid, epoch, &a0),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn idle_transactional_ids_expire_but_running_transactions_do_not() {
    let mut c = coordinator();
    init(&mut c, "idle", 0);
    init(&mut c, "busy", 0);
    let (busy_pid, busy_epoch) = (42, 0);
    assert!(matches!(
        c.add_partitions("busy", busy_pid, busy_epoch, &parts(&[("a", 0)]), 1),
        Ok(Some(_))
    ));
    assert!(c.expire_ids(999, 1_000).is_empty());
    let tombstones = c.expire_ids(1_000, 1_000);
    assert_eq!(
        tombstones,
        vec![TxnRecord {
            key: records::encode_key("idle"),
            value: None,
        }]
    );
    assert!(c.get("idle").is_none());
    assert_eq!(c.get("busy").map(|m| m.status), Some(TxnStatus::Ongoing));
    // Replaying the tombstone forgets the id after a restart too.
    let mut replayed = coordinator();
    init(&mut replayed, "idle", 0);
    replayed.replay(&tombstones[0].key, None).expect("replay");
    assert!(replayed.get("idle").is_none());
    // The id can start again as a new producer.
    assert!(matches!(
        c.init_producer_id("idle", 10_000, None, 2_000, || Some(43)),
        Ok(InitOutcome::Ready { .. })
    ));
}
