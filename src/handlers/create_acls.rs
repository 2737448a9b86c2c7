//! CreateAcls (key 30): stores ACL bindings in the cluster metadata (the quorum in a cluster,
//! the metadata file on one node). Served only with an authorizer configured
//! (`authorizer.class.name`), otherwise SECURITY_DISABLED as in Kafka; needs ALTER on the
//! cluster. Each binding is validated as Kafka does and answered on its own. Runs on the
//! shard that received the request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

use crate::acl::{AclBinding, Operation, PatternType, Permission, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: those the protocol crate has (Kafka 4 dropped v0).
pub const VERSIONS: (i16, i16) = (1, 3);

/// Kafka's message when no authorizer is configured.
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Why the ACL APIs refuse a whole request, if they do: no authorizer (SECURITY_DISABLED), or
/// the principal may not do `op` on the cluster (CLUSTER_AUTHORIZATION_FAILED).
pub(crate) fn refusal(
    shard: &Shard,
    ctx: &RequestContext,
    op: Operation,
) -> Option<(ResponseError, String)> {
    if !shard.config.authorizer.enabled {
        return Some((ResponseError::SecurityDisabled, NO_AUTHORIZER.into()));
    }
    if !enforce::cluster_allowed(shard, ctx, op) {
        return Some((
            ResponseError::ClusterAuthorizationFailed,
            format!("{} may not {op:?} the cluster", ctx.principal),
        ));
    }
    None
}

fn result(error: Option<(ResponseError, String)>) -> AclCreationResult {
    let mut r = AclCreationResult::default();
    if let Some((code, message)) = error {
        r.error_code = code.code();
        r.error_message = Some(str_bytes(message));
    }
    r
}

/// The registry's entry.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let mut response = CreateAclsResponse::default();
    if let Some(refused) = refusal(shard, ctx, Operation::Alter) {
        response.results = request
            .creations
            .iter()
            .map(|_| result(Some(refused.clone())))
            .collect();
        return response;
    }
    let bindings: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            let b = AclBinding {
                resource_type: ResourceType::from_code(c.resource_type),
                name: c.resource_name.to_string(),
                pattern: PatternType::from_code(c.resource_pattern_type),
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: Operation::from_code(c.operation),
                permission: Permission::from_code(c.permission_type),
            };
            b.validate().map(|()| b).map_err(|e| e.0)
        })
        .collect();
    let valid: Vec<AclBinding> = bindings.iter().filter_map(|b| b.clone().ok()).collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        shard.cluster.create_acls(valid).await
    };
    if stored.is_ok() {
        tracing::info!(principal = %ctx.principal, count = bindings.len(), "ACLs created");
    }
    response.results = bindings
        .into_iter()
        .map(|b| match (b, &stored) {
            (Err(message), _) => result(Some((ResponseError::InvalidRequest, message))),
            (Ok(_), Err(e)) => result(Some((e.kafka_error(), e.to_string()))),
            (Ok(_), Ok(())) => result(None),
        })
        .collect();
    response
}
