//! SyncGroup (key 14): the leader hands in the assignment, every member receives its own.
//! Followers park until the leader's sync (or a timeout) completes the generation.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::types::SyncResponse;
use crate::coordinator::group::{Response, wire};
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 5);

/// The member's own assignment once the leader's sync completes the generation (followers park
/// until then, or until it times out).
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let (group_id, sync) = wire::sync_request(&request, ctx.version);
    let error = |e| response(&SyncResponse::error(e), ctx.version);
    if let Err(e) = enforce::group(shard, ctx, Operation::Read, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return error(e);
    }
    let now = crate::now_ms();
    match groups::call_parked(shard, |c, token| c.sync(&group_id, sync, token, now)).await {
        Some(Response::Sync(answer)) => response(&answer, ctx.version),
        // The coordinator only answers a sync token with a sync response.
        Some(Response::Join(_)) => error(ResponseError::UnknownServerError),
        None => error(ResponseError::NotCoordinator),
    }
}

/// Protocol type and name exist only from v5.
fn response(answer: &SyncResponse, version: i16) -> SyncGroupResponse {
    let mut out = wire::sync_response(answer);
    if version < 5 {
        out.protocol_type = None;
        out.protocol_name = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[test]
    fn every_advertised_version_encodes() {
        let answer = SyncResponse {
            error: None,
            protocol_type: Some("consumer".to_owned()),
            protocol_name: Some("range".to_owned()),
            assignment: Bytes::from_static(b"a"),
        };
        for version in VERSIONS.0..=VERSIONS.1 {
            let mut buf = BytesMut::new();
            let encoded = response(&answer, version).encode(&mut buf, version);
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
        }
    }
}
