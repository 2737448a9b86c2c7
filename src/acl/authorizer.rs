//! The authorizer's decision, as Kafka's `StandardAuthorizer` makes it: super users may do
//! everything; otherwise a matching DENY wins over any ALLOW; an ALLOW of the operation (or
//! of ALL, or of an operation that implies it: DESCRIBE is implied by READ, WRITE, DELETE and
//! ALTER, DESCRIBE_CONFIGS by ALTER_CONFIGS) allows; and a resource that no binding applies to
//! at all is allowed only with `allow.everyone.if.no.acl.found`. A binding applies to a
//! resource when the types are equal and it is a literal of the resource's name, the literal
//! wildcard `*`, or a prefix of the name; to a principal when equal or `User:*`; to a host
//! when equal or `*`. Pure: shards call it on their own copy of the bindings.

use super::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};

/// The principal of a connection that did not authenticate (Kafka's `User:ANONYMOUS`).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Kafka's StandardAuthorizer class name, the value of `authorizer.class.name` that turns
/// authorization on (the ZooKeeper-era `kafka.security.authorizer.AclAuthorizer` is accepted
/// as the same thing).
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// Kafka's pre-KRaft authorizer class name, accepted as a synonym.
pub const ACL_AUTHORIZER: &str = "kafka.security.authorizer.AclAuthorizer";

/// `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// An authorizer is configured: requests are checked and the ACL APIs are served.
    /// Without one, everything is allowed and the ACL APIs answer SECURITY_DISABLED.
    pub enabled: bool,
    /// Principals allowed everything (`super.users=User:admin;User:broker`).
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`: allow on a resource no binding applies to.
    pub allow_if_no_acl: bool,
}

/// Who asks, from where.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// `User:<name>`, or [`ANONYMOUS`].
    pub principal: &'a str,
    /// Client IP address as text, without Kafka's leading `/`.
    pub host: &'a str,
}

impl AuthorizerConfig {
    /// Parses `super.users`: `;`-separated principals.
    #[must_use]
    pub fn parse_super_users(value: &str) -> Vec<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Whether `who` may do `op` on the resource (`resource_type`, `name`), given every
    /// stored binding. Without an authorizer everything is allowed.
    #[must_use]
    pub fn authorize(
        &self,
        acls: &[AclBinding],
        who: Requester<'_>,
        op: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.iter().any(|s| s == who.principal) {
            return true;
        }
        let mut any_for_resource = false;
        let mut allowed = false;
        for acl in acls.iter().filter(|a| applies_to(a, resource_type, name)) {
            any_for_resource = true;
            if !(principal_matches(&acl.principal, who.principal)
                && (acl.host == WILDCARD || acl.host == who.host))
            {
                continue;
            }
            match acl.permission {
                Permission::Deny if acl.operation == Operation::All || acl.operation == op => {
                    return false;
                }
                Permission::Allow if implies(acl.operation, op) => allowed = true,
                _ => {}
            }
        }
        allowed || (!any_for_resource && self.allow_if_no_acl)
    }

    /// Kafka's authorized-operations bit field for a resource (bit `1 << code` for each
    /// operation of [`ResourceType::supported_operations`] that `who` may do): without an
    /// authorizer, every supported operation.
    #[must_use]
    pub fn authorized_operations(
        &self,
        acls: &[AclBinding],
        who: Requester<'_>,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|op| self.authorize(acls, who, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

impl AuthorizerConfig {
    /// Kafka's `authorizeByResourceType`: whether `who` may do `op` on at least one resource
    /// of `resource_type` — a matching ALLOW (of `op` or ALL) exists and no DENY of the
    /// literal wildcard covers every resource; with no binding of that type at all,
    /// `allow.everyone.if.no.acl.found` decides.
    #[must_use]
    pub fn authorize_by_resource_type(
        &self,
        acls: &[AclBinding],
        who: Requester<'_>,
        op: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.enabled || self.super_users.iter().any(|s| s == who.principal) {
            return true;
        }
        let of_type: Vec<&AclBinding> = acls
            .iter()
            .filter(|a| a.resource_type == resource_type)
            .collect();
        let applies = |a: &AclBinding| {
            principal_matches(&a.principal, who.principal)
                && (a.host == WILDCARD || a.host == who.host)
                && (a.operation == Operation::All || a.operation == op)
        };
        let denied_everywhere = of_type.iter().any(|a| {
            a.permission == Permission::Deny
                && applies(a)
                && ((a.pattern == PatternType::Literal && a.name == WILDCARD)
                    || (a.pattern == PatternType::Prefixed && a.name.is_empty()))
        });
        if denied_everywhere {
            return false;
        }
        if of_type
            .iter()
            .any(|a| a.permission == Permission::Allow && applies(a))
        {
            return true;
        }
        of_type.is_empty() && self.allow_if_no_acl
    }
}

/// Whether binding `acl` applies to the resource `resource_type`/`name`.
fn applies_to(acl: &AclBinding, resource_type: ResourceType, name: &str) -> bool {
    acl.resource_type == resource_type
        && match acl.pattern {
            PatternType::Literal => acl.name == name || acl.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.name),
            _ => false,
        }
}

/// `User:*` applies to every user principal; anything else only to itself.
fn principal_matches(acl_principal: &str, principal: &str) -> bool {
    acl_principal == principal || (acl_principal == "User:*" && principal.starts_with("User:"))
}

/// Whether an ALLOW of `granted` allows `asked` (Kafka's implied operations).
fn implies(granted: Operation, asked: Operation) -> bool {
    use Operation::*;
    granted == All
        || granted == asked
        || (asked == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (asked == DescribeConfigs && granted == AlterConfigs)
}
