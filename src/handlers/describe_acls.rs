//! DescribeAcls (key 29): the stored ACL bindings one filter matches (Kafka's filter rules,
//! `acl::AclFilter`), grouped by resource pattern. Served only with an authorizer configured,
//! otherwise SECURITY_DISABLED; needs DESCRIBE on the cluster. Runs on the shard that received
//! the request, from the node's copy of the metadata.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::acl::{AclFilter, Operation, PatternType, Permission, ResourceType};
use crate::handlers::create_acls::refusal;
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: those the protocol crate has (Kafka 4 dropped v0).
pub const VERSIONS: (i16, i16) = (1, 3);

/// A filter from its wire fields (DescribeAcls and DeleteAcls share them).
pub(crate) fn filter_of(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type: ResourceType::from_code(resource_type),
        name: name.map(ToString::to_string),
        pattern: PatternType::from_code(pattern),
        principal: principal.map(ToString::to_string),
        host: host.map(ToString::to_string),
        operation: Operation::from_code(operation),
        permission: Permission::from_code(permission),
    }
}

/// The registry's entry.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    let filter = filter_of(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    );
    let refused = refusal(shard, ctx, Operation::Describe).or_else(|| {
        filter
            .validate()
            .err()
            .map(|e| (ResponseError::InvalidRequest, e.0))
    });
    if let Some((code, message)) = refused {
        response.error_code = code.code();
        response.error_message = Some(str_bytes(message));
        return response;
    }
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in shard
        .cluster
        .security()
        .acls
        .iter()
        .filter(|b| filter.matches(b))
    {
        let mut d = AclDescription::default();
        d.principal = str_bytes(b.principal.clone());
        d.host = str_bytes(b.host.clone());
        d.operation = b.operation.code();
        d.permission_type = b.permission.code();
        by_resource
            .entry((b.resource_type.code(), b.name.clone(), b.pattern.code()))
            .or_default()
            .push(d);
    }
    response.resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = resource_type;
            r.resource_name = str_bytes(name);
            r.pattern_type = pattern;
            r.acls = acls;
            r
        })
        .collect();
    response
}
