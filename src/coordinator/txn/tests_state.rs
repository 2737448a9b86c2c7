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

/// Loads `id` as producer (pid, epoch) in `status`, as a replayed record would.
fn load(c: &mut TxnCoordinator, id: &str, pid: i64, epoch: i16, status: TxnStatus) {
    let meta = TxnMetadata {
        transactional_id: id.to_owned(),
        producer_id: pid,
        producer_epoch: epoch,
        timeout_ms: 10_000,
        status,
        partitions: Default::default(),
        last_update_ms: 0,
        start_ms: -1,
        timed_out_epoch: None,
        tv2: Default::default(),
    };
    c.replay(
        &records::encode_key(id),
        Some(&records::encode_value(&meta)),
    )
    .expect("replays");
}

#[test]
fn v2_end_bumps_the_epoch_and_markers_carry_it() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    let added = c.add_partitions_implicitly("t", pid, epoch, &parts(&[("a", 0)]), 1);
    assert!(matches!(added, Ok(Some(_))));
    assert!(c.get("t").expect("exists").tv2.enabled);
    let ended = c
        .end_txn_v2("t", pid, epoch, true, 2, || None)
        .expect("commit accepted");
    assert_eq!((ended.producer_id, ended.producer_epoch), (pid, epoch + 1));
    let (_, job) = ended.work.expect("a transaction was open");
    assert_eq!(
        job.producer_epoch,
        epoch + 1,
        "markers carry the bumped epoch"
    );
    assert_eq!(job.partitions, parts(&[("a", 0)]));
    // While the markers are written: a retry (the old epoch) waits, the old epoch may not
    // begin anything, and the new one must wait too.
    assert_eq!(
        c.end_txn_v2("t", pid, epoch, true, 3, || None),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        c.add_partitions_implicitly("t", pid, epoch + 1, &parts(&[("a", 0)]), 3),
        Err(TxnError::ConcurrentTransactions)
    );
    assert!(c.complete("t", 4).is_some());
    // A retry after completion is answered with the ids to continue with; nothing to do.
    let retried = c
        .end_txn_v2("t", pid, epoch, true, 5, || None)
        .expect("retry");
    assert_eq!(retried.work, None);
    assert_eq!(
        (retried.producer_id, retried.producer_epoch),
        (pid, epoch + 1)
    );
    // The opposite outcome for the old epoch is refused, and the old epoch is fenced.
    assert_eq!(
        c.end_txn_v2("t", pid, epoch, false, 5, || None),
        Err(TxnError::InvalidTxnState)
    );
    assert_eq!(
        c.add_partitions_implicitly("t", pid, epoch, &parts(&[("b", 0)]), 6),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        c.verify_partition("t", pid, epoch, &("a".to_string(), 0)),
        Err(TxnError::ProducerFenced)
    );
    // The new epoch's first write begins the next transaction.
    let next = c.add_partitions_implicitly("t", pid, epoch + 1, &parts(&[("b", 0)]), 7);
    assert!(matches!(next, Ok(Some(_))));
    let meta = c.get("t").expect("exists");
    assert_eq!(meta.status, TxnStatus::Ongoing);
    assert_eq!(meta.start_ms, 7);
    assert_eq!(
        meta.partitions.iter().cloned().collect::<Vec<_>>(),
        parts(&[("b", 0)])
    );
    // An epoch ahead of the coordinator's is fenced as well (not a retry).
    assert_eq!(
        c.end_txn_v2("t", pid, epoch + 2, true, 8, || None),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn v2_abort_with_nothing_open_still_bumps() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    // A commit of nothing is refused; an abort of nothing is an end with its own epoch.
    assert_eq!(
        c.end_txn_v2("t", pid, epoch, true, 1, || None),
        Err(TxnError::InvalidTxnState)
    );
    let ended = c
        .end_txn_v2("t", pid, epoch, false, 2, || None)
        .expect("abort accepted");
    let (_, job) = ended.work.expect("an end to carry out");
    assert!(job.partitions.is_empty() && !job.commit);
    assert_eq!(ended.producer_epoch, epoch + 1);
    assert!(c.complete("t", 3).is_some());
    // Again after a completed abort (a new request, not a retry): another bump.
    let again = c
        .end_txn_v2("t", pid, epoch + 1, false, 4, || None)
        .expect("abort accepted");
    assert!(again.work.is_some());
    assert_eq!(again.producer_epoch, epoch + 2);
}

#[test]
fn v2_exhausted_epoch_moves_to_a_new_producer_id() {
    let mut c = coordinator();
    let last = i16::MAX - 1;
    load(&mut c, "t", 7, last, TxnStatus::Ongoing);
    assert!(c.epoch_exhausted("t"));
    let ended = c
        .end_txn_v2("t", 7, last, true, 1, || Some(99))
        .expect("commit accepted");
    assert_eq!((ended.producer_id, ended.producer_epoch), (99, 0));
    let (_, job) = ended.work.expect("markers");
    assert_eq!(
        (job.producer_id, job.producer_epoch),
        (7, i16::MAX),
        "the markers use the one epoch left"
    );
    assert!(c.complete("t", 2).is_some());
    let meta = c.get("t").expect("exists");
    assert_eq!((meta.producer_id, meta.producer_epoch), (99, 0));
    // A retry under the old id is recognised and answered with the new one.
    let retried = c.end_txn_v2("t", 7, last, true, 3, || None).expect("retry");
    assert_eq!(retried.work, None);
    assert_eq!((retried.producer_id, retried.producer_epoch), (99, 0));
    // The old id may not start anything.
    assert_eq!(
        c.add_partitions_implicitly("t", 7, last, &parts(&[("a", 0)]), 4),
        Err(TxnError::InvalidProducerIdMapping)
    );
    // No id to allocate: the end is refused, nothing changes.
    load(&mut c, "u", 8, last, TxnStatus::Ongoing);
    assert_eq!(
        c.end_txn_v2("u", 8, last, true, 5, || None),
        Err(TxnError::ProducerIdUnavailable)
    );
    assert_eq!(c.get("u").map(|m| m.status), Some(TxnStatus::Ongoing));
}

#[test]
fn v2_timeout_abort_fences_the_producers_own_end() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    c.add_partitions_implicitly("t", pid, epoch, &parts(&[("a", 0)]), 1)
        .expect("added");
    let expired = c.expire(1 + 10_000);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].1.producer_epoch, epoch + 2);
    assert!(c.complete("t", 20_000).is_some());
    // The producer's abort of its old epoch is not mistaken for a retry of this abort.
    assert_eq!(
        c.end_txn_v2("t", pid, epoch, false, 20_001, || None),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn v1_end_is_unchanged_for_an_explicitly_added_transaction() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "t", 0);
    c.add_partitions("t", pid, epoch, &parts(&[("a", 0)]), 1)
        .expect("added");
    assert!(!c.get("t").expect("exists").tv2.enabled);
    let (_, job) = c
        .end_txn("t", pid, epoch, true, 2)
        .expect("commit accepted")
        .expect("open");
    assert_eq!(job.producer_epoch, epoch, "version 1 keeps the epoch");
    assert!(c.complete("t", 3).is_some());
    assert_eq!(c.get("t").map(|m| m.producer_epoch), Some(epoch));
}
