//! CreateAcls, DescribeAcls and DeleteAcls for `sluice acls`, like kafka-acls.sh. Bindings and
//! filters are the broker's own types ([`crate::acl`]): they are plain data with Kafka's wire
//! codes, so client and broker cannot disagree on a code.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{Client, ClientError, Result, sb};
use crate::acl::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};

fn opt(s: Option<&String>) -> Option<StrBytes> {
    s.map(|s| sb(s.as_str()))
}

impl Client {
    /// Creates `bindings`; one result per binding, in order (the broker answers each alone).
    pub fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let mut request = CreateAclsRequest::default();
        request.creations = bindings.iter().map(creation).collect();
        let response = self.any().send(&request, None)?;
        if response.results.len() != bindings.len() {
            return Err(ClientError::Protocol(format!(
                "CreateAcls answered {} results for {} bindings",
                response.results.len(),
                bindings.len()
            )));
        }
        Ok(response
            .results
            .iter()
            .zip(bindings)
            .map(|(r, b)| {
                ClientError::check(
                    r.error_code,
                    || format!("creating ACL {}", b.principal),
                    r.error_message.as_ref(),
                )
            })
            .collect())
    }

    /// The bindings `filter` matches, as the broker groups them (by resource pattern).
    pub fn describe_acls(&mut self, filter: &AclFilter) -> Result<Vec<AclBinding>> {
        let mut request = DescribeAclsRequest::default();
        request.resource_type_filter = filter.resource_type.code();
        // The generated defaults of these nullable strings are "", which matches nothing;
        // `None` (null) is what matches any.
        request.resource_name_filter = opt(filter.name.as_ref());
        request.pattern_type_filter = filter.pattern.code();
        request.principal_filter = opt(filter.principal.as_ref());
        request.host_filter = opt(filter.host.as_ref());
        request.operation = filter.operation.code();
        request.permission_type = filter.permission.code();
        let response = self.any().send(&request, None)?;
        ClientError::check(
            response.error_code,
            || "describing ACLs".to_string(),
            response.error_message.as_ref(),
        )?;
        Ok(response
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(move |a| AclBinding {
                    resource_type: ResourceType::from_code(r.resource_type),
                    name: r.resource_name.to_string(),
                    pattern: PatternType::from_code(r.pattern_type),
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: Operation::from_code(a.operation),
                    permission: Permission::from_code(a.permission_type),
                })
            })
            .collect())
    }

    /// Deletes what each filter matches; per filter, the bindings the broker deleted.
    pub fn delete_acls(&mut self, filters: &[AclFilter]) -> Result<Vec<Result<Vec<AclBinding>>>> {
        let mut request = DeleteAclsRequest::default();
        request.filters = filters.iter().map(delete_filter).collect();
        let response = self.any().send(&request, None)?;
        if response.filter_results.len() != filters.len() {
            return Err(ClientError::Protocol(format!(
                "DeleteAcls answered {} results for {} filters",
                response.filter_results.len(),
                filters.len()
            )));
        }
        Ok(response
            .filter_results
            .iter()
            .map(|r| {
                ClientError::check(
                    r.error_code,
                    || "deleting ACLs".to_string(),
                    r.error_message.as_ref(),
                )?;
                Ok(r.matching_acls
                    .iter()
                    .map(|m| AclBinding {
                        resource_type: ResourceType::from_code(m.resource_type),
                        name: m.resource_name.to_string(),
                        pattern: PatternType::from_code(m.pattern_type),
                        principal: m.principal.to_string(),
                        host: m.host.to_string(),
                        operation: Operation::from_code(m.operation),
                        permission: Permission::from_code(m.permission_type),
                    })
                    .collect())
            })
            .collect())
    }
}

fn creation(b: &AclBinding) -> AclCreation {
    let mut c = AclCreation::default();
    c.resource_type = b.resource_type.code();
    c.resource_name = sb(b.name.as_str());
    c.resource_pattern_type = b.pattern.code();
    c.principal = sb(b.principal.as_str());
    c.host = sb(b.host.as_str());
    c.operation = b.operation.code();
    c.permission_type = b.permission.code();
    c
}

fn delete_filter(f: &AclFilter) -> DeleteAclsFilter {
    let mut d = DeleteAclsFilter::default();
    d.resource_type_filter = f.resource_type.code();
    d.resource_name_filter = opt(f.name.as_ref());
    d.pattern_type_filter = f.pattern.code();
    d.principal_filter = opt(f.principal.as_ref());
    d.host_filter = opt(f.host.as_ref());
    d.operation = f.operation.code();
    d.permission_type = f.permission.code();
    d
}
