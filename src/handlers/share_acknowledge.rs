//! ShareAcknowledge (key 79, KIP-932): a share consumer's acknowledgements outside a fetch
//! (commitSync, commitAsync, close). Carries on the member's share session (epoch 0 is
//! refused: acknowledgements need a session) or closes it with epoch -1, releasing whatever
//! the member still holds. Each partition's acknowledgements are stored in
//! `__share_group_state` before the answer leaves.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};

use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::share_requests::{self, AckBatch};
use crate::share::session::CLOSE_EPOCH;

/// Versions served: v1, as Kafka 4.1+ and librdkafka 2.14+.
pub const VERSIONS: (i16, i16) = (1, 1);

/// Session check, every partition's acknowledgements, then the close if asked.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let group = request.group_id.as_ref().map(|g| g.0.as_str());
    let member = request.member_id.as_ref().map(|m| m.as_str());
    let caller = match share_requests::check_caller(shard, ctx, group, member) {
        Ok(caller) => caller,
        Err(e) => return error_response(e),
    };
    let epoch = request.share_session_epoch;
    if let Err(e) = share_requests::enter_session(shard, &caller, epoch, false).await {
        return error_response(e);
    }
    let mut out = ShareAcknowledgeResponse::default();
    for topic in &request.topics {
        let mut answered = ShareAcknowledgeTopicResponse::default();
        answered.topic_id = topic.topic_id;
        for p in &topic.partitions {
            let batches: Vec<AckBatch<'_>> = p
                .acknowledgement_batches
                .iter()
                .map(|b| AckBatch::new(b.first_offset, b.last_offset, &b.acknowledge_types))
                .collect();
            let key = (topic.topic_id, p.partition_index);
            let result = share_requests::acknowledge(shard, ctx, &caller, key, &batches).await;
            let mut data = PartitionData::default();
            data.partition_index = p.partition_index;
            data.error_code = result.err().map_or(0, |e| e.code());
            data.current_leader.leader_id = -1;
            data.current_leader.leader_epoch = -1;
            answered.partitions.push(data);
        }
        out.responses.push(answered);
    }
    if epoch == CLOSE_EPOCH {
        share_requests::close_session(shard, &caller).await;
    }
    out
}

fn error_response(error: ResponseError) -> ShareAcknowledgeResponse {
    let mut out = ShareAcknowledgeResponse::default();
    out.error_code = error.code();
    out.error_message = Some(crate::handlers::str_bytes(error.to_string()));
    out
}
