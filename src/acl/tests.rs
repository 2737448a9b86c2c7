use super::authorizer::{ANONYMOUS, AuthorizerConfig, Requester};
use super::*;

fn binding(
    rt: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    op: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: rt,
        name: name.into(),
        pattern,
        principal: principal.into(),
        host: "*".into(),
        operation: op,
        permission,
    }
}

fn topic_allow(name: &str, pattern: PatternType, principal: &str, op: Operation) -> AclBinding {
    binding(
        ResourceType::Topic,
        name,
        pattern,
        principal,
        op,
        Permission::Allow,
    )
}

fn filter(name: Option<&str>, pattern: PatternType) -> AclFilter {
    AclFilter {
        resource_type: ResourceType::Topic,
        name: name.map(str::to_owned),
        pattern,
        principal: None,
        host: None,
        operation: Operation::Any,
        permission: Permission::Any,
    }
}

fn enabled(allow_if_no_acl: bool) -> AuthorizerConfig {
    AuthorizerConfig {
        enabled: true,
        super_users: vec!["User:admin".into()],
        allow_if_no_acl,
    }
}

const ALICE: Requester<'static> = Requester {
    principal: "User:alice",
    host: "127.0.0.1",
};

#[test]
fn wire_codes_round_trip() {
    for code in 0..=14 {
        assert_eq!(Operation::from_code(code).code(), code);
    }
    assert_eq!(Operation::from_code(99), Operation::Unknown);
    assert_eq!(PatternType::from_code(4), PatternType::Prefixed);
    assert_eq!(ResourceType::from_code(4), ResourceType::Cluster);
    assert_eq!(Permission::from_code(3), Permission::Allow);
}

#[test]
fn validation_refuses_what_kafka_refuses() {
    let ok = topic_allow("t", PatternType::Literal, "User:a", Operation::Read);
    assert!(ok.validate().is_ok());
    let mut b = ok.clone();
    b.pattern = PatternType::Match;
    assert!(b.validate().is_err());
    let mut b = ok.clone();
    b.operation = Operation::Any;
    assert!(b.validate().is_err());
    let mut b = ok.clone();
    b.principal = "alice".into();
    assert!(b.validate().unwrap_err().0.contains("no colon"));
    let mut b = ok.clone();
    b.name = String::new();
    assert!(b.validate().is_err());
    let mut b = ok.clone();
    b.resource_type = ResourceType::Cluster;
    assert!(b.validate().unwrap_err().0.contains("kafka-cluster"));
    b.name = CLUSTER_NAME.into();
    assert!(b.validate().is_ok());
    let mut f = filter(None, PatternType::Any);
    assert!(f.validate().is_ok());
    f.operation = Operation::Unknown;
    assert!(f.validate().is_err());
}

#[test]
fn literal_filters_do_not_match_prefixed_bindings() {
    let prefixed = topic_allow("orders", PatternType::Prefixed, "User:a", Operation::Read);
    let literal = topic_allow("orders", PatternType::Literal, "User:a", Operation::Read);
    assert!(!filter(Some("orders"), PatternType::Literal).matches(&prefixed));
    assert!(filter(Some("orders"), PatternType::Literal).matches(&literal));
    assert!(filter(Some("orders"), PatternType::Prefixed).matches(&prefixed));
    assert!(filter(Some("orders"), PatternType::Any).matches(&prefixed));
    assert!(filter(Some("orders"), PatternType::Any).matches(&literal));
    assert!(!filter(Some("orders-eu"), PatternType::Any).matches(&prefixed));
}

#[test]
fn match_filters_select_every_binding_that_applies_to_the_name() {
    let prefixed = topic_allow("orders", PatternType::Prefixed, "User:a", Operation::Read);
    let literal = topic_allow("orders-eu", PatternType::Literal, "User:a", Operation::Read);
    let wildcard = topic_allow("*", PatternType::Literal, "User:a", Operation::Read);
    let other = topic_allow("payments", PatternType::Literal, "User:a", Operation::Read);
    let f = filter(Some("orders-eu"), PatternType::Match);
    assert!(f.matches(&prefixed) && f.matches(&literal) && f.matches(&wildcard));
    assert!(!f.matches(&other));
    assert!(filter(None, PatternType::Match).matches(&other));
}

#[test]
fn entry_filters_match_principal_host_operation_permission() {
    let b = topic_allow("t", PatternType::Literal, "User:a", Operation::Read);
    let mut f = filter(None, PatternType::Any);
    f.principal = Some("User:b".into());
    assert!(!f.matches(&b));
    f.principal = Some("User:a".into());
    f.operation = Operation::Write;
    assert!(!f.matches(&b));
    f.operation = Operation::Read;
    f.permission = Permission::Deny;
    assert!(!f.matches(&b));
    f.permission = Permission::Allow;
    f.host = Some("*".into());
    assert!(f.matches(&b));
    f.resource_type = ResourceType::Group;
    assert!(!f.matches(&b));
}

#[test]
fn without_an_authorizer_everything_is_allowed() {
    let off = AuthorizerConfig::default();
    let deny = binding(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        "User:alice",
        Operation::All,
        Permission::Deny,
    );
    assert!(off.authorize(&[deny], ALICE, Operation::Write, ResourceType::Topic, "t"));
    assert_eq!(
        off.authorized_operations(&[], ALICE, ResourceType::Cluster, CLUSTER_NAME),
        0b1_1111_1010_0000
    );
}

#[test]
fn deny_wins_over_allow() {
    let acls = [
        topic_allow("t", PatternType::Literal, "User:alice", Operation::Write),
        binding(
            ResourceType::Topic,
            "t",
            PatternType::Prefixed,
            "User:*",
            Operation::Write,
            Permission::Deny,
        ),
    ];
    assert!(!enabled(true).authorize(&acls, ALICE, Operation::Write, ResourceType::Topic, "t"));
}

#[test]
fn super_users_may_do_everything() {
    let deny = binding(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        "User:admin",
        Operation::All,
        Permission::Deny,
    );
    let admin = Requester {
        principal: "User:admin",
        host: "1.2.3.4",
    };
    assert!(enabled(false).authorize(&[deny], admin, Operation::Write, ResourceType::Topic, "t"));
}

#[test]
fn no_acl_found_follows_the_setting() {
    let acls = [topic_allow(
        "other",
        PatternType::Literal,
        "User:bob",
        Operation::Read,
    )];
    let auth = enabled(true);
    assert!(auth.authorize(&acls, ALICE, Operation::Write, ResourceType::Topic, "t"));
    assert!(!enabled(false).authorize(&acls, ALICE, Operation::Write, ResourceType::Topic, "t"));
    // Once any binding applies to the resource, only an ALLOW for the principal allows.
    let acls = [topic_allow(
        "t",
        PatternType::Literal,
        "User:bob",
        Operation::Read,
    )];
    assert!(!auth.authorize(&acls, ALICE, Operation::Read, ResourceType::Topic, "t"));
}

#[test]
fn literal_prefixed_and_wildcard_bindings_apply() {
    let auth = enabled(false);
    let literal = [topic_allow(
        "t",
        PatternType::Literal,
        "User:alice",
        Operation::Read,
    )];
    assert!(auth.authorize(&literal, ALICE, Operation::Read, ResourceType::Topic, "t"));
    assert!(!auth.authorize(&literal, ALICE, Operation::Read, ResourceType::Topic, "t2"));
    let prefixed = [topic_allow(
        "logs-",
        PatternType::Prefixed,
        "User:alice",
        Operation::Read,
    )];
    assert!(auth.authorize(
        &prefixed,
        ALICE,
        Operation::Read,
        ResourceType::Topic,
        "logs-eu"
    ));
    assert!(!auth.authorize(
        &prefixed,
        ALICE,
        Operation::Read,
        ResourceType::Topic,
        "logs"
    ));
    let wildcard = [topic_allow(
        "*",
        PatternType::Literal,
        "User:*",
        Operation::Read,
    )];
    assert!(auth.authorize(
        &wildcard,
        ALICE,
        Operation::Read,
        ResourceType::Topic,
        "any"
    ));
    assert!(!auth.authorize(
        &wildcard,
        ALICE,
        Operation::Read,
        ResourceType::Group,
        "any"
    ));
    let mut host = topic_allow("t", PatternType::Literal, "User:alice", Operation::Read);
    host.host = "10.0.0.1".into();
    assert!(!auth.authorize(&[host], ALICE, Operation::Read, ResourceType::Topic, "t"));
}

#[test]
fn implied_operations_are_kafkas() {
    let auth = enabled(false);
    for granted in [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::Alter,
    ] {
        let acls = [topic_allow(
            "t",
            PatternType::Literal,
            "User:alice",
            granted,
        )];
        assert!(auth.authorize(&acls, ALICE, Operation::Describe, ResourceType::Topic, "t"));
    }
    let acls = [topic_allow(
        "t",
        PatternType::Literal,
        "User:alice",
        Operation::Create,
    )];
    assert!(!auth.authorize(&acls, ALICE, Operation::Describe, ResourceType::Topic, "t"));
    let acls = [topic_allow(
        "t",
        PatternType::Literal,
        "User:alice",
        Operation::AlterConfigs,
    )];
    assert!(auth.authorize(
        &acls,
        ALICE,
        Operation::DescribeConfigs,
        ResourceType::Topic,
        "t"
    ));
    let acls = [topic_allow(
        "t",
        PatternType::Literal,
        "User:alice",
        Operation::All,
    )];
    assert!(auth.authorize(&acls, ALICE, Operation::Delete, ResourceType::Topic, "t"));
    // A DENY of DESCRIBE does not deny READ, but a DENY of ALL does.
    let acls = [
        topic_allow("t", PatternType::Literal, "User:alice", Operation::Read),
        binding(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:alice",
            Operation::Describe,
            Permission::Deny,
        ),
    ];
    assert!(auth.authorize(&acls, ALICE, Operation::Read, ResourceType::Topic, "t"));
    assert!(!auth.authorize(&acls, ALICE, Operation::Describe, ResourceType::Topic, "t"));
}

#[test]
fn authorized_operations_follow_the_acls() {
    let auth = enabled(true);
    let anonymous = Requester {
        principal: ANONYMOUS,
        host: "127.0.0.1",
    };
    let all_topic_ops = auth.authorized_operations(&[], anonymous, ResourceType::Topic, "t");
    assert_eq!(all_topic_ops.count_ones(), 8);
    // As librdkafka's 0081 expects: ALTER on the cluster alone gives ALTER and DESCRIBE.
    let acls = [binding(
        ResourceType::Cluster,
        CLUSTER_NAME,
        PatternType::Literal,
        "User:alice",
        Operation::Alter,
        Permission::Allow,
    )];
    let ops = auth.authorized_operations(&acls, ALICE, ResourceType::Cluster, CLUSTER_NAME);
    assert_eq!(
        ops,
        (1 << Operation::Alter.code()) | (1 << Operation::Describe.code())
    );
}

#[test]
fn authorize_by_resource_type_looks_for_any_allow_not_denied_everywhere() {
    let auth = enabled(false);
    let write = |name: &str, pattern, permission| {
        binding(
            ResourceType::Topic,
            name,
            pattern,
            "User:alice",
            Operation::Write,
            permission,
        )
    };
    assert!(!auth.authorize_by_resource_type(&[], ALICE, Operation::Write, ResourceType::Topic));
    assert!(enabled(true).authorize_by_resource_type(
        &[],
        ALICE,
        Operation::Write,
        ResourceType::Topic
    ));
    let some = [write("logs-", PatternType::Prefixed, Permission::Allow)];
    assert!(auth.authorize_by_resource_type(&some, ALICE, Operation::Write, ResourceType::Topic));
    let denied = [
        some[0].clone(),
        write("*", PatternType::Literal, Permission::Deny),
    ];
    assert!(!auth.authorize_by_resource_type(
        &denied,
        ALICE,
        Operation::Write,
        ResourceType::Topic
    ));
}
