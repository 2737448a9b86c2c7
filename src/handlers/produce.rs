//! Produce (key 0): validates each partition's record batches (CRC-32C, magic, lengths,
//! `max.message.bytes`), appends them to the partition log through the shard's io_uring
//! ring and answers once the acks policy is met. acks=0 gets no answer; on a single node
//! acks=all is satisfied by the local append (and the flush policy, when one is set). In a
//! cluster, acks=all on a replicated partition is refused while the ISR is below
//! `min.insync.replicas`, and answered once the high watermark covers the records (every
//! in-sync replica has them), or with an error at the request's timeout.
//! A producer's first transactional batch on a partition is checked with its transaction
//! coordinator (through the mailbox if another shard of this node holds it, with
//! AddPartitionsToTxn v4 `verify_only` if another node does): the partition must have been
//! added to the open transaction of that producer id and epoch. From v12 (KIP-890 part 2,
//! transaction version 2) a partition not yet in the transaction is added to it instead,
//! through the same channel, as Kafka's partition leader does for such producers.
//! v13 names topics by id (KIP-516): each topic's id is looked up once per request in the
//! shard's copy of the metadata, and an unknown id is answered UNKNOWN_TOPIC_ID.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::produce_legacy;
use crate::handlers::request::{DispatchError, Reply, RequestContext, decode_body, encode_frame};
use crate::shard::Shard;
use crate::shard::replication;
use crate::storage::log::{AppendError, FlushWait, Partition};
use crate::storage::recompress::recompress;
use crate::storage::validate::validate_produce;

/// v0-v2 are framed by `produce_legacy`; the records must be RecordBatch v2 in every version.
/// v12 is v11 for a producer using transaction version 2; v13 names topics by id.
pub const VERSIONS: (i16, i16) = (0, 13);

/// The first version whose transactional producers add partitions by producing to them
/// (KIP-890 part 2): Kafka's clients use v12+ in a transaction only with transaction version 2.
const IMPLICIT_ADD_SINCE: i16 = 12;

/// The first version naming topics by id (KIP-516).
const TOPIC_IDS_SINCE: i16 = 13;

const ACKS_ALL: i16 = -1;

/// The registry's entry: v0-v2 bodies are framed by hand (`produce_legacy`), later ones by
/// the generated codec behind the bounds check; acks=0 gets no reply.
pub async fn serve(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    mut body: Bytes,
) -> Result<Reply, DispatchError> {
    let legacy = ctx.version <= produce_legacy::LEGACY_MAX_VERSION;
    // Kafka counts the request's size against `producer_byte_rate`.
    let request_bytes = body.len();
    let request: ProduceRequest = if legacy {
        produce_legacy::decode(body)?
    } else {
        decode_body(ctx.api_key, &mut body, ctx.version)?
    };
    let answered = handle(shard, ctx, request).await;
    let throttle_time_ms = crate::quota::produce(shard, ctx, request_bytes);
    match answered.map(|r| r.with_throttle_time_ms(throttle_time_ms)) {
        Some(response) if legacy => Ok(produce_legacy::encode(
            ctx.correlation_id,
            ctx.version,
            &response,
        )),
        Some(response) => encode_frame(ctx.correlation_id, ctx.version, &response),
        None => Ok(Reply::None),
    }
}

/// Appends each partition's batches; `None` for acks=0 (no answer is sent), else the per-partition
/// base offset or error code, answered once the acks policy is met.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let acks_valid = matches!(acks, -1..=1);
    let mut response = ProduceResponse::default();
    let mut awaiting: Vec<AwaitingReplicas> = Vec::new();
    // Authorization as in Kafka: WRITE on the transactional id (if any), then per topic.
    let txn_denied = request.transactional_id.as_ref().is_some_and(|id| {
        !enforce::allowed(
            shard,
            ctx,
            Operation::Write,
            ResourceType::TransactionalId,
            id,
        )
    });
    for topic in request.topic_data {
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        out.topic_id = topic.topic_id;
        // v13: one lookup per topic, outside the per-partition path.
        let by_id = (ctx.version >= TOPIC_IDS_SINCE).then(|| shard.topic_by_id(topic.topic_id));
        let name: &str = match &by_id {
            Some(Some(meta)) => &meta.name,
            _ => &topic.name.0,
        };
        let denied = if matches!(by_id, Some(None)) {
            // Kafka answers an unknown id before authorizing: there is no name to authorize.
            Some(ResponseError::UnknownTopicId)
        } else if txn_denied {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !enforce::allowed(shard, ctx, Operation::Write, ResourceType::Topic, name) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        for data in topic.partition_data {
            let result = if let Some(error) = denied {
                failure(data.index, error, None)
            } else if acks_valid {
                let target = Target {
                    version: ctx.version,
                    acks,
                    transactional_id: request.transactional_id.as_ref().map(|t| t.as_str()),
                    topic: name,
                    index: data.index,
                };
                let (result, waiting) = produce_partition(shard, &target, data.records).await;
                if let Some(mut w) = waiting {
                    w.slot = (response.responses.len(), out.partition_responses.len());
                    awaiting.push(w);
                }
                result
            } else {
                failure(data.index, ResponseError::InvalidRequiredAcks, None)
            };
            out.partition_responses.push(result);
        }
        response.responses.push(out);
    }
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    wait_for_replicas(shard, awaiting, timeout, &mut response).await;
    (acks != 0).then_some(response)
}

/// An acks=all append to a replicated partition, answered once the ISR has it.
struct AwaitingReplicas {
    topic: String,
    index: i32,
    partition: Rc<Partition>,
    last_offset: i64,
    /// (topic, partition) position of its answer in the response.
    slot: (usize, usize),
}

/// Waits, all partitions against one deadline (the request's `timeout_ms`), until the high
/// watermark of every awaiting partition covers its records; a partition that does not get
/// there answers with the error of the wait.
async fn wait_for_replicas(
    shard: &Rc<Shard>,
    awaiting: Vec<AwaitingReplicas>,
    timeout: Duration,
    response: &mut ProduceResponse,
) {
    #[cfg(debug_assertions)]
    if test_hooks::ack_before_replication() {
        return;
    }
    let deadline = Instant::now() + timeout;
    for w in awaiting {
        let left = deadline.saturating_duration_since(Instant::now());
        let waited = replication::wait_for_replicas(
            shard,
            &w.topic,
            w.index,
            &w.partition,
            w.last_offset,
            left,
        )
        .await;
        if let Err(e) = waited {
            let slot = &mut response.responses[w.slot.0].partition_responses[w.slot.1];
            slot.error_code = e.code();
        }
    }
}

fn failure(index: i32, error: ResponseError, message: Option<String>) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.error_code = error.code();
    p.base_offset = -1;
    p.log_append_time_ms = -1;
    p.log_start_offset = -1;
    p.error_message = message.map(StrBytes::from_string);
    p
}

/// Where one partition's records go, and on whose behalf.
struct Target<'a> {
    version: i16,
    acks: i16,
    transactional_id: Option<&'a str>,
    topic: &'a str,
    index: i32,
}

/// One partition's append, and for acks=all on a replicated partition what its answer
/// still waits for.
async fn produce_partition(
    shard: &Rc<Shard>,
    target: &Target<'_>,
    records: Option<Bytes>,
) -> (PartitionProduceResponse, Option<AwaitingReplicas>) {
    match append_partition(shard, target, records).await {
        Ok((response, waiting)) => (response, waiting),
        Err(response) => (response, None),
    }
}

async fn append_partition(
    shard: &Rc<Shard>,
    target: &Target<'_>,
    records: Option<Bytes>,
) -> Result<(PartitionProduceResponse, Option<AwaitingReplicas>), PartitionProduceResponse> {
    let (acks, topic, index) = (target.acks, target.topic, target.index);
    if crate::handlers::is_internal_topic(topic) {
        // The coordinators write these logs; a client batch there would corrupt group or
        // transaction state (Kafka refuses it the same way).
        let message = format!("Cannot append to internal topic {topic}");
        return Err(failure(
            index,
            ResponseError::InvalidTopicException,
            Some(message),
        ));
    }
    // No auto-creation here: Kafka creates topics automatically only from Metadata requests,
    // and a Produce to an unknown topic gets UNKNOWN_TOPIC_OR_PARTITION.
    let partition = match shard.partition(topic, index).await {
        Ok(p) => p,
        Err(e) => return Err(failure(index, ResponseError::from(&e), Some(e.to_string()))),
    };
    let records = records.unwrap_or_default();
    let (max_message_bytes, compacted) = partition.produce_limits();
    let mut validated = match validate_produce(&records, max_message_bytes, compacted) {
        Ok(v) => v,
        Err(e) => return Err(refused(target, &e)),
    };
    if let Some((codec, levels)) = partition.produce_codec() {
        // The topic's compression.type: batches in another codec are rewritten in it, and the
        // result is validated again (its size may now exceed max.message.bytes).
        let rewritten = recompress(validated.bytes(), codec, levels).and_then(|r| match r {
            Some(bytes) => validate_produce(&bytes, max_message_bytes, compacted).map(Some),
            None => Ok(None),
        });
        match rewritten {
            Ok(Some(v)) => validated = v,
            Ok(None) => {}
            Err(e) => return Err(refused(target, &e)),
        }
    }
    if target.version >= 3 && validated.batch_count() > 1 {
        // Kafka's rule (ProduceRequest v3+): an idempotent producer's sequence check answers
        // one batch, so a second batch in the same partition could be dropped as a duplicate.
        return Err(failure(
            index,
            ResponseError::InvalidRecord,
            Some(
                "Produce requests with version 3 or above must have exactly one record batch per partition"
                    .into(),
            ),
        ));
    }
    if validated.has_control() {
        // Markers come only from transaction coordinators, never from clients.
        return Err(failure(
            index,
            ResponseError::InvalidRecord,
            Some("clients may not write control batches".into()),
        ));
    }
    if let Some((producer_id, epoch)) = validated.transactional_producer()
        && !partition.in_transaction(producer_id)
        && let Err(code) = verify_transactional(shard, target, producer_id, epoch).await
    {
        return Err(failure(index, code, None));
    }
    // Cluster mode only: a single node has no ISR, and its produce path stays as it was.
    let meta = shard
        .config
        .cluster
        .as_ref()
        .and_then(|_| shard.topic(topic));
    let replicated = meta.is_some();
    if acks == ACKS_ALL
        && replicated
        && let Some(meta) = &meta
        && let Err(code) = replication::check_min_insync(shard, meta, index, &partition)
    {
        return Err(failure(index, code, None));
    }
    let (bytes_in, messages_in) = (records.len() as u64, validated.record_count as u64);
    // The flush policy's fdatasync, when one is due, comes before an acks=all answer.
    let wait = match acks {
        ACKS_ALL => FlushWait::Durable,
        _ => FlushWait::Background,
    };
    let info = partition
        .append(validated, crate::now_ms(), wait)
        .await
        .map_err(|e| {
            tracing::warn!(topic, partition = index, error = %e, "append failed");
            failure(index, ResponseError::from(&e), Some(e.to_string()))
        })?;
    crate::metrics::with_current(|m| m.add_topic_traffic(topic, bytes_in, messages_in, 0));
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.base_offset = info.base_offset;
    p.log_append_time_ms = info.log_append_time_ms;
    p.log_start_offset = info.log_start_offset;
    let waiting = match meta {
        Some(meta) if replicated => {
            replication::leader_appended(shard, topic, index, &partition);
            (acks == ACKS_ALL && meta.is_replicated(index as usize)).then(|| AwaitingReplicas {
                topic: topic.to_string(),
                index,
                partition: partition.clone(),
                last_offset: info.last_offset,
                slot: (0, 0),
            })
        }
        _ => None,
    };
    Ok((p, waiting))
}

/// The answer to a produce whose batches failed validation; nothing was appended.
fn refused(target: &Target<'_>, e: &AppendError) -> PartitionProduceResponse {
    let mut refused = failure(target.index, ResponseError::from(e), Some(e.to_string()));
    if let AppendError::MissingKey { record_indexes } = e
        && target.version >= 8
    {
        // v8+ names the offending records, so a client fails only those (KIP-467).
        refused.record_errors = record_indexes
            .iter()
            .map(|i| {
                let mut r = BatchIndexAndErrorMessage::default();
                r.batch_index = *i;
                r.batch_index_error_message = Some(StrBytes::from_static_str(
                    "Compacted topic cannot accept message without key",
                ));
                r
            })
            .collect();
    }
    refused
}

/// The first transactional batch of a producer on this partition: its coordinator must
/// know the partition is in the producer's open transaction (once per transaction and
/// partition; later batches find the transaction open here already). From v12 the
/// coordinator adds it instead (transaction version 2).
async fn verify_transactional(
    shard: &Shard,
    target: &Target<'_>,
    producer_id: i64,
    epoch: i16,
) -> Result<(), ResponseError> {
    let Some(transactional_id) = target.transactional_id else {
        return Err(ResponseError::InvalidTxnState);
    };
    let partition = (target.topic.to_owned(), target.index);
    let add = target.version >= IMPLICIT_ADD_SINCE;
    crate::shard::txns::verify_partition(
        shard,
        transactional_id,
        (producer_id, epoch),
        partition,
        add,
    )
    .await
}

/// Test-only planted bug, compiled into debug builds only (release builds never read the
/// variable): `SLUICE_TEST_ACK_BEFORE_REPLICATION=1` answers acks=all right after the leader's
/// local append, without waiting for the ISR. The chaos harness (`tests/chaos/`) runs with it
/// to show its checker catches the acknowledged writes a failover then loses.
#[cfg(debug_assertions)]
mod test_hooks {
    use std::sync::OnceLock;

    pub fn ack_before_replication() -> bool {
        static ASKED: OnceLock<bool> = OnceLock::new();
        *ASKED.get_or_init(|| {
            std::env::var("SLUICE_TEST_ACK_BEFORE_REPLICATION").is_ok_and(|v| v.trim() == "1")
        })
    }
}
