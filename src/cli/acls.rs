//! `sluice acls --list|--add|--remove`, like kafka-acls.sh: the same flags (principals, hosts,
//! operations, resources, `--resource-pattern-type`, the `--producer` and `--consumer`
//! convenience sets) and the same output (`Current ACLs for resource ...` followed by one
//! `(principal=..., host=..., operation=..., permissionType=...)` line per binding).
//!
//! Flags are turned into [`crate::acl`] bindings and filters here and checked before anything
//! is sent, so a typo is a usage error (exit 2) rather than a half-applied change; the broker
//! still validates everything. `--remove` does not prompt (there is no terminal in scripts),
//! but prints exactly what DeleteAcls reports it removed.

use std::collections::BTreeMap;

use clap::{ArgGroup, Args};
use kafka_protocol::ResponseError;

use crate::acl::{
    AclBinding, AclFilter, CLUSTER_NAME, Operation, PatternType, Permission, ResourceType,
};
use crate::client::{Client, ClientError};

use super::{CliError, Common, OutputFormat, print_json};

/// Arguments of `sluice acls`: exactly one of `--add`, `--remove` and `--list`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("action").required(true).args(["add", "remove", "list"])))]
pub struct AclsArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Add the ACLs the other flags describe.
    #[arg(long)]
    pub add: bool,
    /// Remove matching ACLs (all ACLs of the resources when no principal is given).
    #[arg(long)]
    pub remove: bool,
    /// List ACLs (of the given resources, or all).
    #[arg(long)]
    pub list: bool,
    /// Principal (`User:alice`) to ALLOW; repeatable.
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    pub allow_principals: Vec<String>,
    /// Principal to DENY; repeatable.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    pub deny_principals: Vec<String>,
    /// Host the ALLOW applies to (default `*`); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Host the DENY applies to (default `*`); repeatable.
    #[arg(long = "deny-host", value_name = "HOST")]
    pub deny_hosts: Vec<String>,
    /// Operation (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens, All);
    /// repeatable; default All.
    #[arg(long = "operation", value_name = "OPERATION", value_parser = parse_operation)]
    pub operations: Vec<Operation>,
    /// Topic (or prefix, or `*`); repeatable.
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Consumer group (or prefix, or `*`); repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The cluster resource (`kafka-cluster`).
    #[arg(long)]
    pub cluster: bool,
    /// Transactional id (or prefix, or `*`); repeatable.
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_ids: Vec<String>,
    /// Delegation token id; repeatable.
    #[arg(long = "delegation-token", value_name = "TOKEN")]
    pub delegation_tokens: Vec<String>,
    /// literal or prefixed for --add; also any or match (filters) for --list and --remove.
    /// Default: literal for --add and --remove, any for --list.
    #[arg(long, value_enum)]
    pub resource_pattern_type: Option<PatternArg>,
    /// With --list: only ACLs of this principal; repeatable.
    #[arg(long = "principal", value_name = "PRINCIPAL")]
    pub principals: Vec<String>,
    /// Producer set: WRITE, DESCRIBE, CREATE on --topic; WRITE, DESCRIBE on
    /// --transactional-id.
    #[arg(long, conflicts_with = "consumer")]
    pub producer: bool,
    /// With --producer: IDEMPOTENT_WRITE on the cluster.
    #[arg(long, requires = "producer")]
    pub idempotent: bool,
    /// Consumer set: READ, DESCRIBE on --topic; READ on --group.
    #[arg(long)]
    pub consumer: bool,
    /// Accepted for kafka-acls.sh compatibility; sluice never prompts.
    #[arg(long)]
    pub force: bool,
}

/// `--resource-pattern-type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PatternArg {
    /// The name is the resource's name, or `*` for every resource of the type.
    Literal,
    /// The name is a prefix of the resources' names.
    Prefixed,
    /// Filters only: every binding that applies to the named resource.
    Match,
    /// Filters only: bindings of any pattern type with exactly this name.
    Any,
}

impl PatternArg {
    fn pattern(self) -> PatternType {
        match self {
            PatternArg::Literal => PatternType::Literal,
            PatternArg::Prefixed => PatternType::Prefixed,
            PatternArg::Match => PatternType::Match,
            PatternArg::Any => PatternType::Any,
        }
    }
}

const OPERATIONS: [Operation; 13] = [
    Operation::All,
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::CreateTokens,
    Operation::DescribeTokens,
];

/// Kafka's spelling of an enum value: `IdempotentWrite` -> `IDEMPOTENT_WRITE`.
pub fn kafka_name(value: impl std::fmt::Debug) -> String {
    let camel = format!("{value:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Accepts Kafka's spellings: `IdempotentWrite`, `IDEMPOTENT_WRITE`, `idempotent-write`.
fn parse_operation(text: &str) -> Result<Operation, String> {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let wanted = squash(text.trim());
    OPERATIONS
        .into_iter()
        .find(|op| squash(&format!("{op:?}")) == wanted)
        .ok_or_else(|| {
            let names: Vec<String> = OPERATIONS.iter().map(|o| format!("{o:?}")).collect();
            format!("unknown operation; expected one of {}", names.join(", "))
        })
}

/// How kafka-acls.sh shows a resource pattern.
fn show_resource(kind: ResourceType, name: &str, pattern: PatternType) -> String {
    format!(
        "ResourcePattern(resourceType={}, name={name}, patternType={})",
        kafka_name(kind),
        kafka_name(pattern)
    )
}

/// How kafka-acls.sh shows an access control entry.
fn show_entry(b: &AclBinding) -> String {
    format!(
        "(principal={}, host={}, operation={}, permissionType={})",
        b.principal,
        b.host,
        kafka_name(b.operation),
        kafka_name(b.permission)
    )
}

/// A binding in `--output json`, with Kafka's names for the codes.
#[derive(serde::Serialize)]
struct JsonBinding {
    resource_type: String,
    name: String,
    pattern_type: String,
    principal: String,
    host: String,
    operation: String,
    permission_type: String,
}

fn json(bindings: &[AclBinding]) -> Vec<JsonBinding> {
    bindings
        .iter()
        .map(|b| JsonBinding {
            resource_type: kafka_name(b.resource_type),
            name: b.name.clone(),
            pattern_type: kafka_name(b.pattern),
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: kafka_name(b.operation),
            permission_type: kafka_name(b.permission),
        })
        .collect()
}

/// A resource pattern: type, name, pattern type.
type Pattern<'a> = (ResourceType, &'a str, PatternType);

/// Prints bindings grouped by resource pattern, each group headed by `title` and the
/// pattern, in the order first seen (the broker's order).
fn print_groups(title: &str, bindings: &[AclBinding]) {
    let mut groups: Vec<(Pattern<'_>, Vec<&AclBinding>)> = Vec::new();
    for b in bindings {
        let key = (b.resource_type, b.name.as_str(), b.pattern);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(b),
            None => groups.push((key, vec![b])),
        }
    }
    for ((kind, name, pattern), list) in groups {
        println!("{title} `{}`:", show_resource(kind, name, pattern));
        for b in list {
            println!(" \t{}", show_entry(b));
        }
        println!();
    }
}

/// Runs `sluice acls`.
pub fn run(a: AclsArgs) -> Result<(), CliError> {
    if a.add {
        add(&a)
    } else if a.remove {
        remove(&a)
    } else {
        list(&a)
    }
}

/// The resources named by the flags, as (type, name).
fn resources(a: &AclsArgs) -> Vec<(ResourceType, String)> {
    let named = |kind: ResourceType, names: &[String]| {
        names
            .iter()
            .map(move |n| (kind, n.clone()))
            .collect::<Vec<_>>()
    };
    let mut out = named(ResourceType::Topic, &a.topics);
    out.extend(named(ResourceType::Group, &a.groups));
    if a.cluster {
        out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
    }
    out.extend(named(ResourceType::TransactionalId, &a.transactional_ids));
    out.extend(named(ResourceType::DelegationToken, &a.delegation_tokens));
    out
}

fn check_principal(principal: &str) -> Result<(), CliError> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(CliError::usage(
            format!("invalid principal '{principal}'"),
            "write principals as Type:name, e.g. User:alice (User:* for everyone)",
        )),
    }
}

/// Refuses flags that make no sense together, as kafka-acls.sh does, before connecting.
fn check_flags(a: &AclsArgs) -> Result<(), CliError> {
    let convenience = a.producer || a.consumer;
    if a.list
        && (convenience
            || !a.allow_principals.is_empty()
            || !a.deny_principals.is_empty()
            || !a.allow_hosts.is_empty()
            || !a.deny_hosts.is_empty())
    {
        return Err(CliError::usage(
            "--list takes no --allow/--deny principals or hosts, --producer or --consumer",
            "filter the listing with --principal and the resource flags",
        ));
    }
    if !a.list && !a.principals.is_empty() {
        return Err(CliError::usage(
            "--principal filters --list only",
            "use --allow-principal or --deny-principal with --add and --remove",
        ));
    }
    if convenience && (!a.operations.is_empty() || !a.deny_principals.is_empty()) {
        return Err(CliError::usage(
            "--producer and --consumer choose the operations and allow only",
            "drop --operation and --deny-principal, or spell the ACLs out without --producer/--consumer",
        ));
    }
    if !a.allow_hosts.is_empty() && a.allow_principals.is_empty() {
        return Err(CliError::usage(
            "--allow-host needs --allow-principal",
            "name who the host applies to with --allow-principal Type:name",
        ));
    }
    if !a.deny_hosts.is_empty() && a.deny_principals.is_empty() {
        return Err(CliError::usage(
            "--deny-host needs --deny-principal",
            "name who the host applies to with --deny-principal Type:name",
        ));
    }
    if a.consumer && (a.topics.is_empty() || a.groups.is_empty()) {
        return Err(CliError::usage(
            "--consumer needs --topic and --group",
            "e.g. --consumer --topic orders --group billing --allow-principal User:alice",
        ));
    }
    if a.producer && a.topics.is_empty() && a.transactional_ids.is_empty() {
        return Err(CliError::usage(
            "--producer needs --topic or --transactional-id",
            "e.g. --producer --topic orders --allow-principal User:alice",
        ));
    }
    a.allow_principals
        .iter()
        .chain(&a.deny_principals)
        .chain(&a.principals)
        .try_for_each(|p| check_principal(p))
}

/// The operations `--producer`/`--consumer` grant on a resource type (Kafka's sets).
fn convenience_operations(a: &AclsArgs, kind: ResourceType) -> Vec<Operation> {
    use Operation::*;
    match (a.producer, kind) {
        (true, ResourceType::Topic) => vec![Write, Describe, Create],
        (true, ResourceType::TransactionalId) => vec![Write, Describe],
        (true, ResourceType::Cluster) => vec![IdempotentWrite],
        (false, ResourceType::Topic) => vec![Read, Describe],
        (false, ResourceType::Group) => vec![Read],
        _ => Vec::new(),
    }
}

/// The bindings `--add` creates, or `--remove` with principals deletes, per resource.
fn bindings(a: &AclsArgs, pattern: PatternType) -> Result<Vec<AclBinding>, CliError> {
    let mut resources = resources(a);
    if a.producer && a.idempotent && !a.cluster {
        resources.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
    }
    let all_hosts = vec!["*".to_string()];
    let hosts = |given: &Vec<String>| {
        if given.is_empty() {
            all_hosts.clone()
        } else {
            given.clone()
        }
    };
    let entries = [
        (
            Permission::Allow,
            &a.allow_principals,
            hosts(&a.allow_hosts),
        ),
        (Permission::Deny, &a.deny_principals, hosts(&a.deny_hosts)),
    ];
    let mut out = Vec::new();
    for (kind, name) in resources {
        let operations = if a.producer || a.consumer {
            convenience_operations(a, kind)
        } else if a.operations.is_empty() {
            vec![Operation::All]
        } else {
            check_operations(kind, &a.operations)?;
            a.operations.clone()
        };
        // The cluster resource is only ever literal: `--producer --idempotent` with a
        // prefixed topic still grants IDEMPOTENT_WRITE on `kafka-cluster` itself.
        let pattern = if kind == ResourceType::Cluster {
            PatternType::Literal
        } else {
            pattern
        };
        for (permission, principals, hosts) in &entries {
            for principal in *principals {
                for host in hosts {
                    for &operation in &operations {
                        out.push(AclBinding {
                            resource_type: kind,
                            name: name.clone(),
                            pattern,
                            principal: principal.clone(),
                            host: host.clone(),
                            operation,
                            permission: *permission,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Kafka refuses an operation a resource type does not have (READ on the cluster, ...).
fn check_operations(kind: ResourceType, operations: &[Operation]) -> Result<(), CliError> {
    let supported = kind.supported_operations();
    let bad: Vec<String> = operations
        .iter()
        .filter(|op| **op != Operation::All && !supported.contains(op))
        .map(|op| kafka_name(*op))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = supported.iter().map(|op| kafka_name(*op)).collect();
    Err(CliError::usage(
        format!(
            "resource type {} does not support operation(s) {}",
            kafka_name(kind),
            bad.join(", ")
        ),
        format!(
            "{} supports {}, and ALL",
            kafka_name(kind),
            names.join(", ")
        ),
    ))
}

fn need_resource(a: &AclsArgs) -> Result<(), CliError> {
    if resources(a).is_empty() {
        return Err(CliError::usage(
            "no resource given",
            "name one with --topic, --group, --cluster, --transactional-id or --delegation-token",
        ));
    }
    Ok(())
}

/// A filter matching every binding of one resource (name and pattern as given).
fn resource_filter(kind: ResourceType, name: Option<String>, pattern: PatternType) -> AclFilter {
    AclFilter {
        resource_type: kind,
        name,
        pattern,
        principal: None,
        host: None,
        operation: Operation::Any,
        permission: Permission::Any,
    }
}

/// The filter selecting exactly `b`.
fn exact_filter(b: &AclBinding) -> AclFilter {
    AclFilter {
        resource_type: b.resource_type,
        name: Some(b.name.clone()),
        pattern: b.pattern,
        principal: Some(b.principal.clone()),
        host: Some(b.host.clone()),
        operation: b.operation,
        permission: b.permission,
    }
}

fn add(a: &AclsArgs) -> Result<(), CliError> {
    check_flags(a)?;
    need_resource(a)?;
    let pattern = a.resource_pattern_type.unwrap_or(PatternArg::Literal);
    if !matches!(pattern, PatternArg::Literal | PatternArg::Prefixed) {
        return Err(CliError::usage(
            "--resource-pattern-type match or any is a filter, not valid with --add",
            "use --resource-pattern-type literal or prefixed",
        ));
    }
    if a.allow_principals.is_empty() && a.deny_principals.is_empty() {
        return Err(CliError::usage(
            "--add needs --allow-principal or --deny-principal",
            "e.g. --add --allow-principal User:alice --operation Read --topic orders",
        ));
    }
    let wanted = bindings(a, pattern.pattern())?;
    let mut client = a.common.connect()?;
    for result in client.create_acls(&wanted).map_err(explain)? {
        result.map_err(explain)?;
    }
    if a.common.output == OutputFormat::Json {
        return print_json(&serde_json::json!({ "added": json(&wanted) }));
    }
    print_groups("Adding ACLs for resource", &wanted);
    show_current(&mut client, &wanted)
}

/// After a change, kafka-acls.sh lists what the changed resources now have.
fn show_current(client: &mut Client, changed: &[AclBinding]) -> Result<(), CliError> {
    let mut seen: Vec<Pattern<'_>> = Vec::new();
    for b in changed {
        let key = (b.resource_type, b.name.as_str(), b.pattern);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let filter = resource_filter(b.resource_type, Some(b.name.clone()), b.pattern);
        let current = client.describe_acls(&filter).map_err(explain)?;
        if current.is_empty() {
            println!(
                "Current ACLs for resource `{}`: (none)\n",
                show_resource(b.resource_type, &b.name, b.pattern)
            );
        } else {
            print_groups("Current ACLs for resource", &current);
        }
    }
    Ok(())
}

fn remove(a: &AclsArgs) -> Result<(), CliError> {
    check_flags(a)?;
    need_resource(a)?;
    let pattern = a
        .resource_pattern_type
        .unwrap_or(PatternArg::Literal)
        .pattern();
    let whole_resources = a.allow_principals.is_empty() && a.deny_principals.is_empty();
    let filters: Vec<AclFilter> = if whole_resources {
        resources(a)
            .into_iter()
            .map(|(kind, name)| resource_filter(kind, Some(name), pattern))
            .collect()
    } else {
        bindings(a, pattern)?.iter().map(exact_filter).collect()
    };
    let mut client = a.common.connect()?;
    let mut removed = Vec::new();
    for result in client.delete_acls(&filters).map_err(explain)? {
        removed.extend(result.map_err(explain)?);
    }
    if a.common.output == OutputFormat::Json {
        return print_json(&serde_json::json!({ "removed": json(&removed) }));
    }
    if removed.is_empty() {
        println!("No ACLs matched; nothing was removed.");
        return Ok(());
    }
    print_groups("Removed ACLs for resource", &removed);
    show_current(&mut client, &removed)
}

fn list(a: &AclsArgs) -> Result<(), CliError> {
    check_flags(a)?;
    let pattern = a.resource_pattern_type.unwrap_or(PatternArg::Any).pattern();
    let resources = resources(a);
    let mut filters: Vec<AclFilter> = if resources.is_empty() {
        vec![resource_filter(ResourceType::Any, None, pattern)]
    } else {
        resources
            .into_iter()
            .map(|(kind, name)| resource_filter(kind, Some(name), pattern))
            .collect()
    };
    let mut client = a.common.connect()?;
    if a.principals.is_empty() {
        let found = describe_all(&mut client, &filters)?;
        if a.common.output == OutputFormat::Json {
            return print_json(&json(&found));
        }
        print_groups("Current ACLs for resource", &found);
        return Ok(());
    }
    // One listing per principal, as kafka-acls.sh prints them.
    let mut by_principal: BTreeMap<&str, Vec<AclBinding>> = BTreeMap::new();
    for principal in &a.principals {
        for f in &mut filters {
            f.principal = Some(principal.clone());
        }
        by_principal.insert(principal.as_str(), describe_all(&mut client, &filters)?);
    }
    if a.common.output == OutputFormat::Json {
        let all: Vec<AclBinding> = by_principal.into_values().flatten().collect();
        return print_json(&json(&all));
    }
    for (principal, found) in by_principal {
        println!("ACLs for principal `{principal}`");
        print_groups("Current ACLs for resource", &found);
    }
    Ok(())
}

/// Every binding any of `filters` matches, each once, in the broker's order.
fn describe_all(client: &mut Client, filters: &[AclFilter]) -> Result<Vec<AclBinding>, CliError> {
    let mut found: Vec<AclBinding> = Vec::new();
    for f in filters {
        for b in client.describe_acls(f).map_err(explain)? {
            if !found.contains(&b) {
                found.push(b);
            }
        }
    }
    Ok(found)
}

/// The broker's refusals of the ACL APIs, in the operator's terms.
fn explain(e: ClientError) -> CliError {
    let hint = match e.kafka_error() {
        Some(ResponseError::SecurityDisabled) => {
            "the broker has no authorizer, so it keeps no ACLs: set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer (and super.users) in its config"
        }
        Some(ResponseError::ClusterAuthorizationFailed) => {
            "managing ACLs needs ALTER on the cluster (DESCRIBE to list): pass --command-config with a super user's credentials (super.users)"
        }
        Some(ResponseError::InvalidRequest) => {
            "the broker refused the ACL as Kafka would; check the principal (Type:name), the resource name and the pattern type"
        }
        _ => return CliError::Client(e),
    };
    CliError::explained(refusal_message(&e), hint)
}

/// `context: ERROR_NAME (broker's message)`: Kafka's name of the error, which is what
/// operators search for and scripts match on, rather than the protocol crate's spelling.
pub fn refusal_message(e: &ClientError) -> String {
    match e {
        ClientError::Broker {
            context,
            error,
            message,
        } => {
            let detail = message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            format!("{context}: {}{detail}", kafka_name(error))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_in_kafka_spellings_and_print_in_kafka_names() {
        for text in ["IdempotentWrite", "IDEMPOTENT_WRITE", "idempotent-write"] {
            assert_eq!(parse_operation(text), Ok(Operation::IdempotentWrite));
        }
        assert_eq!(parse_operation("read"), Ok(Operation::Read));
        assert!(parse_operation("Any").is_err());
        assert_eq!(kafka_name(Operation::DescribeConfigs), "DESCRIBE_CONFIGS");
        assert_eq!(
            kafka_name(ResourceType::TransactionalId),
            "TRANSACTIONAL_ID"
        );
        assert_eq!(
            show_resource(ResourceType::Topic, "t", PatternType::Prefixed),
            "ResourcePattern(resourceType=TOPIC, name=t, patternType=PREFIXED)"
        );
    }

    #[test]
    fn operations_a_resource_type_lacks_are_refused() {
        assert!(check_operations(ResourceType::Cluster, &[Operation::Read]).is_err());
        assert!(check_operations(ResourceType::Topic, &[Operation::Read, Operation::All]).is_ok());
    }
}
