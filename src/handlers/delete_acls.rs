//! DeleteAcls (key 31): removes the stored ACL bindings each filter matches and returns them
//! per filter (Kafka's filter rules, `acl::AclFilter`; a literal filter does not match prefixed
//! bindings). Served only with an authorizer configured, otherwise SECURITY_DISABLED; needs
//! ALTER on the cluster. Runs on the shard that received the request; the change goes through
//! the quorum in a cluster.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

use crate::acl::{AclBinding, AclFilter, Operation};
use crate::handlers::create_acls::refusal;
use crate::handlers::describe_acls::filter_of;
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: those the protocol crate has (Kafka 4 dropped v0).
pub const VERSIONS: (i16, i16) = (1, 3);

fn failed(code: ResponseError, message: &str) -> DeleteAclsFilterResult {
    let mut r = DeleteAclsFilterResult::default();
    r.error_code = code.code();
    r.error_message = Some(str_bytes(message));
    r
}

fn matching(b: &AclBinding) -> DeleteAclsMatchingAcl {
    let mut m = DeleteAclsMatchingAcl::default();
    m.resource_type = b.resource_type.code();
    m.resource_name = str_bytes(b.name.clone());
    m.pattern_type = b.pattern.code();
    m.principal = str_bytes(b.principal.clone());
    m.host = str_bytes(b.host.clone());
    m.operation = b.operation.code();
    m.permission_type = b.permission.code();
    m
}

/// The registry's entry.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let mut response = DeleteAclsResponse::default();
    if let Some((code, message)) = refusal(shard, ctx, Operation::Alter) {
        response.filter_results = request
            .filters
            .iter()
            .map(|_| failed(code, &message))
            .collect();
        return response;
    }
    let filters: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            let filter = filter_of(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            );
            filter.validate().map(|()| filter).map_err(|e| e.0)
        })
        .collect();
    let valid: Vec<AclFilter> = filters.iter().filter_map(|f| f.clone().ok()).collect();
    let deleted = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        shard.cluster.delete_acls(valid).await
    };
    let mut deleted_per_valid = match &deleted {
        Ok(d) => d.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    response.filter_results = filters
        .into_iter()
        .map(|f| match (f, &deleted) {
            (Err(message), _) => failed(ResponseError::InvalidRequest, &message),
            (Ok(_), Err(e)) => failed(e.kafka_error(), &e.to_string()),
            (Ok(_), Ok(_)) => {
                let mut r = DeleteAclsFilterResult::default();
                r.matching_acls = deleted_per_valid
                    .next()
                    .unwrap_or_default()
                    .iter()
                    .map(matching)
                    .collect();
                r
            }
        })
        .collect();
    let count: usize = response
        .filter_results
        .iter()
        .map(|r| r.matching_acls.len())
        .sum();
    if count > 0 {
        tracing::info!(principal = %ctx.principal, count, "ACLs deleted");
    }
    response
}
