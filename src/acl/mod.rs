//! Access control lists as Kafka defines them (KIP-140, KIP-290): the binding a CreateAcls
//! request stores (resource type, name, literal or prefixed pattern, principal, host, operation,
//! permission), the filters DescribeAcls and DeleteAcls match bindings with, and Kafka's
//! validation of both. Pure data and pure functions: the bindings live in the cluster metadata
//! (`metadata::cluster` on one node, `metadata::image` in a cluster) and each shard keeps a
//! read-only copy; [`authorizer`] decides requests from them. Runs on whichever thread asks.

pub mod authorizer;
pub mod enforce;
pub mod principal_rules;

use serde::{Deserialize, Serialize};

/// The one name a CLUSTER resource may have (Kafka's `kafka-cluster`).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The resource name and principal and host that match any (Kafka's `*`).
pub const WILDCARD: &str = "*";

/// Kafka's `ResourceType`, with its wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    /// 0: only in a malformed request.
    Unknown,
    /// 1: filters only.
    Any,
    /// 2.
    Topic,
    /// 3.
    Group,
    /// 4: the one resource named `kafka-cluster`.
    Cluster,
    /// 5.
    TransactionalId,
    /// 6.
    DelegationToken,
    /// 7.
    User,
}

/// Kafka's `PatternType`, with its wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// 0: only in a malformed request.
    Unknown,
    /// 1: filters only: the filter's name must equal the binding's, whatever its pattern.
    Any,
    /// 2: filters only: every binding that would apply to a resource of the filter's name.
    Match,
    /// 3: the binding's name is the resource name, or `*` for every resource of the type.
    Literal,
    /// 4: the binding applies to every resource whose name starts with its name.
    Prefixed,
}

/// Kafka's `AclOperation`, with its wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// 0.
    Unknown,
    /// 1: filters only.
    Any,
    /// 2: every operation.
    All,
    /// 3.
    Read,
    /// 4.
    Write,
    /// 5.
    Create,
    /// 6.
    Delete,
    /// 7.
    Alter,
    /// 8: implied by READ, WRITE, DELETE and ALTER.
    Describe,
    /// 9.
    ClusterAction,
    /// 10: implied by ALTER_CONFIGS.
    DescribeConfigs,
    /// 11.
    AlterConfigs,
    /// 12.
    IdempotentWrite,
    /// 13.
    CreateTokens,
    /// 14.
    DescribeTokens,
}

/// Kafka's `AclPermissionType`, with its wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// 0.
    Unknown,
    /// 1: filters only.
    Any,
    /// 2: wins over any ALLOW.
    Deny,
    /// 3.
    Allow,
}

macro_rules! wire_codes {
    ($ty:ident { $($variant:ident = $code:expr),* $(,)? }) => {
        impl $ty {
            /// The variant of wire code `code`; [`Self::Unknown`] for a code Kafka does not define.
            #[must_use]
            pub fn from_code(code: i8) -> Self {
                match code {
                    $( $code => Self::$variant, )*
                    _ => Self::Unknown,
                }
            }

            /// The wire code.
            #[must_use]
            pub fn code(self) -> i8 {
                match self {
                    $( Self::$variant => $code, )*
                }
            }
        }
    };
}

wire_codes!(ResourceType { Unknown = 0, Any = 1, Topic = 2, Group = 3, Cluster = 4,
    TransactionalId = 5, DelegationToken = 6, User = 7 });
wire_codes!(PatternType { Unknown = 0, Any = 1, Match = 2, Literal = 3, Prefixed = 4 });
wire_codes!(Operation { Unknown = 0, Any = 1, All = 2, Read = 3, Write = 4, Create = 5,
    Delete = 6, Alter = 7, Describe = 8, ClusterAction = 9, DescribeConfigs = 10,
    AlterConfigs = 11, IdempotentWrite = 12, CreateTokens = 13, DescribeTokens = 14 });
wire_codes!(Permission { Unknown = 0, Any = 1, Deny = 2, Allow = 3 });

impl ResourceType {
    /// The operations Kafka defines on resources of this type (`AclEntry.supportedOperations`
    /// of Kafka 3.9), which `authorized_operations` answers about.
    #[must_use]
    pub fn supported_operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Self::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            Self::Group => &[Read, Describe, Delete],
            Self::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            Self::TransactionalId => &[Describe, Write],
            Self::DelegationToken => &[Describe],
            Self::User => &[CreateTokens, DescribeTokens],
            Self::Unknown | Self::Any => &[],
        }
    }
}

/// One stored ACL: who (principal, host) may or may not (permission) do what (operation) on
/// which resources (type, name, pattern). Only valid bindings ([`AclBinding::validate`]) are
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// Resource type; never ANY or UNKNOWN.
    pub resource_type: ResourceType,
    /// Resource name, or a prefix, or `*`.
    pub name: String,
    /// LITERAL or PREFIXED.
    pub pattern: PatternType,
    /// `Type:name`, e.g. `User:alice` or `User:*`.
    pub principal: String,
    /// Client host (IP address) or `*`.
    pub host: String,
    /// Never ANY or UNKNOWN.
    pub operation: Operation,
    /// ALLOW or DENY.
    pub permission: Permission,
}

/// Why a binding or filter is refused; answered INVALID_REQUEST with this message, as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl AclBinding {
    /// Kafka's checks on a binding to create (`AclControlManager.validateNewAcl` and the
    /// broker's cluster-name rule).
    ///
    /// # Errors
    /// [`InvalidAcl`] with Kafka's message.
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let bad = |m: String| Err(InvalidAcl(m));
        if matches!(
            self.resource_type,
            ResourceType::Unknown | ResourceType::Any
        ) {
            return bad(format!("Invalid resourceType {:?}", self.resource_type));
        }
        if !matches!(self.pattern, PatternType::Literal | PatternType::Prefixed) {
            return bad(format!("Invalid patternType {:?}", self.pattern));
        }
        if matches!(self.operation, Operation::Unknown | Operation::Any) {
            return bad(format!("Invalid operation {:?}", self.operation));
        }
        if !matches!(self.permission, Permission::Allow | Permission::Deny) {
            return bad(format!("Invalid permissionType {:?}", self.permission));
        }
        if self.name.is_empty() {
            return bad("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER_NAME {
            return bad(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if !self.principal.contains(':') {
            return bad(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            ));
        }
        Ok(())
    }
}

/// What DescribeAcls and DeleteAcls select bindings with; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    /// ANY or one type.
    pub resource_type: ResourceType,
    /// Resource name, or `None` for any.
    pub name: Option<String>,
    /// ANY, MATCH, LITERAL or PREFIXED.
    pub pattern: PatternType,
    /// Principal, or `None` for any.
    pub principal: Option<String>,
    /// Host, or `None` for any.
    pub host: Option<String>,
    /// ANY or one operation.
    pub operation: Operation,
    /// ANY, ALLOW or DENY.
    pub permission: Permission,
}

impl AclFilter {
    /// Kafka refuses a filter with an UNKNOWN element (`Filter contain UNKNOWN elements`).
    ///
    /// # Errors
    /// [`InvalidAcl`] naming the element.
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        if self.resource_type == ResourceType::Unknown
            || self.pattern == PatternType::Unknown
            || self.operation == Operation::Unknown
            || self.permission == Permission::Unknown
        {
            return Err(InvalidAcl("Filter contain UNKNOWN elements".into()));
        }
        Ok(())
    }

    /// Kafka's `AclBindingFilter.matches`: the resource pattern filter, then the entry filter.
    #[must_use]
    pub fn matches(&self, b: &AclBinding) -> bool {
        self.matches_resource(b)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == Operation::Any || self.operation == b.operation)
            && (self.permission == Permission::Any || self.permission == b.permission)
    }

    /// Kafka's `ResourcePatternFilter.matches`. A LITERAL or PREFIXED filter selects bindings
    /// of that pattern with exactly its name; ANY selects any pattern with exactly its name;
    /// MATCH selects every binding that applies to a resource of its name (equal literal,
    /// wildcard literal, or a prefix of it).
    fn matches_resource(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern, PatternType::Any | PatternType::Match)
            && self.pattern != b.pattern
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern == PatternType::Any || self.pattern == b.pattern {
            return *name == b.name;
        }
        match b.pattern {
            PatternType::Literal => *name == b.name || b.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&b.name),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
