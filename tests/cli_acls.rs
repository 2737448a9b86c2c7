//! End-to-end tests of `sluice acls` and `sluice users` against the real broker binary with
//! Kafka's authorizer settings on a SASL_PLAINTEXT listener (`super.users=User:admin`):
//! adding, listing (all, per resource, MATCH, per principal) and removing ACLs with the
//! removed bindings printed, the `--producer`/`--consumer` sets, a prefixed binding, a
//! granted principal producing; SCRAM users added, described, logging in through
//! `--command-config` and deleted; and the refusals (SECURITY_DISABLED without an authorizer,
//! CLUSTER_AUTHORIZATION_FAILED for a non-super user, usage errors).

mod cli_common;
mod common;

use cli_common::{Cli, Run, SHARDS, sluice, start_broker};
use common::{Broker, BrokerOptions};

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";"#;
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// A broker with a SASL_PLAINTEXT listener, Kafka's authorizer and `User:admin` as super user.
fn secured_broker() -> Broker {
    Broker::start_with(
        BrokerOptions::default()
            .with_cores(SHARDS)
            .with_config("listeners", "SASL_PLAINTEXT://127.0.0.1:9092")
            .with_config("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS)
            .with_config("authorizer.class.name", STANDARD_AUTHORIZER)
            .with_config("super.users", "User:admin")
            .with_config("allow.everyone.if.no.acl.found", "false"),
    )
}

/// A `--command-config` file logging in as `user` with `mechanism`.
fn login(user: &str, password: &str, mechanism: &str) -> tempfile::NamedTempFile {
    let module = if mechanism == "PLAIN" {
        "org.apache.kafka.common.security.plain.PlainLoginModule"
    } else {
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    };
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        file.path(),
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n\
             sasl.jaas.config={module} required username=\"{user}\" password=\"{password}\";\n"
        ),
    )
    .expect("write client properties");
    file
}

/// Runs `sluice args...` against `broker` logged in with `config`.
fn as_user(broker: &Broker, config: &tempfile::NamedTempFile, args: &[&str]) -> Run {
    as_user_with_stdin(broker, config, args, "")
}

fn as_user_with_stdin(
    broker: &Broker,
    config: &tempfile::NamedTempFile,
    args: &[&str],
    stdin: &str,
) -> Run {
    let bootstrap = broker.bootstrap();
    let path = config.path().display().to_string();
    let mut all = args.to_vec();
    all.extend(["--bootstrap-server", &bootstrap, "--command-config", &path]);
    sluice(&all, stdin)
}

fn topic_pattern(name: &str, pattern: &str) -> String {
    format!("`ResourcePattern(resourceType=TOPIC, name={name}, patternType={pattern})`")
}

fn entry(principal: &str, operation: &str, permission: &str) -> String {
    format!(
        " \t(principal={principal}, host=*, operation={operation}, permissionType={permission})\n"
    )
}

#[test]
fn acls_add_list_remove_and_convenience_sets() {
    let broker = secured_broker();
    let admin = login("admin", "admin-secret", "PLAIN");
    let acls = |args: &[&str]| as_user(&broker, &admin, &[&["acls"], args].concat());

    let orders = topic_pattern("orders", "LITERAL");
    let read = entry("User:alice", "READ", "ALLOW");
    let write = entry("User:alice", "WRITE", "ALLOW");
    let out = acls(&[
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--operation",
        "WRITE",
        "--topic",
        "orders",
    ])
    .ok();
    assert_eq!(
        out,
        format!(
            "Adding ACLs for resource {orders}:\n{read}{write}\n\
             Current ACLs for resource {orders}:\n{read}{write}\n"
        )
    );

    let logs = topic_pattern("logs-", "PREFIXED");
    let describe = entry("User:alice", "DESCRIBE", "ALLOW");
    acls(&[
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Describe",
        "--topic",
        "logs-",
        "--resource-pattern-type",
        "prefixed",
    ])
    .ok();
    let all = format!(
        "Current ACLs for resource {logs}:\n{describe}\n\
         Current ACLs for resource {orders}:\n{read}{write}\n"
    );
    assert_eq!(acls(&["--list"]).ok(), all);
    assert_eq!(
        acls(&["--list", "--topic", "orders"]).ok(),
        format!("Current ACLs for resource {orders}:\n{read}{write}\n")
    );
    // MATCH: every binding that applies to topic logs-app, i.e. the prefixed one.
    assert_eq!(
        acls(&[
            "--list",
            "--topic",
            "logs-app",
            "--resource-pattern-type",
            "match"
        ])
        .ok(),
        format!("Current ACLs for resource {logs}:\n{describe}\n")
    );
    assert_eq!(
        acls(&["--list", "--principal", "User:alice"]).ok(),
        format!("ACLs for principal `User:alice`\n{all}")
    );
    assert_eq!(
        acls(&["--list", "--principal", "User:bob"]).ok(),
        "ACLs for principal `User:bob`\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&acls(&["--list", "--topic", "logs-", "--output", "json"]).ok())
            .unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"resource_type": "TOPIC", "name": "logs-", "pattern_type": "PREFIXED",
            "principal": "User:alice", "host": "*", "operation": "DESCRIBE",
            "permission_type": "ALLOW"}])
    );

    // Removing one entry prints it, then what the resource still has.
    assert_eq!(
        acls(&[
            "--remove",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "orders"
        ])
        .ok(),
        format!(
            "Removed ACLs for resource {orders}:\n{write}\n\
             Current ACLs for resource {orders}:\n{read}\n"
        )
    );
    // Without principals, everything on the resource goes.
    assert_eq!(
        acls(&["--remove", "--topic", "orders", "--force"]).ok(),
        format!(
            "Removed ACLs for resource {orders}:\n{read}\n\
             Current ACLs for resource {orders}: (none)\n\n"
        )
    );
    assert_eq!(
        acls(&["--remove", "--topic", "orders"]).ok(),
        "No ACLs matched; nothing was removed.\n"
    );
    // A literal filter does not remove the prefixed binding; a prefixed one does.
    acls(&["--remove", "--topic", "logs-"]).ok();
    assert!(acls(&["--list"]).ok().contains("name=logs-"));
    let out = acls(&[
        "--remove",
        "--topic",
        "logs-",
        "--resource-pattern-type",
        "prefixed",
    ])
    .ok();
    assert!(
        out.starts_with(&format!("Removed ACLs for resource {logs}:\n{describe}")),
        "{out}"
    );
    assert_eq!(acls(&["--list"]).ok(), "");

    // --producer with a transactional id and --idempotent, --consumer with a group.
    acls(&[
        "--add",
        "--producer",
        "--allow-principal",
        "User:bob",
        "--topic",
        "out",
        "--transactional-id",
        "tx",
        "--idempotent",
    ])
    .ok();
    acls(&[
        "--add",
        "--consumer",
        "--allow-principal",
        "User:carol",
        "--topic",
        "in",
        "--group",
        "g",
    ])
    .ok();
    let bob = |op: &str| entry("User:bob", op, "ALLOW");
    let carol = |op: &str| entry("User:carol", op, "ALLOW");
    assert_eq!(
        acls(&["--list"]).ok(),
        format!(
            "Current ACLs for resource {}:\n{}{}\n\
             Current ACLs for resource {}:\n{}{}{}\n\
             Current ACLs for resource `ResourcePattern(resourceType=GROUP, name=g, patternType=LITERAL)`:\n{}\n\
             Current ACLs for resource `ResourcePattern(resourceType=CLUSTER, name=kafka-cluster, patternType=LITERAL)`:\n{}\n\
             Current ACLs for resource `ResourcePattern(resourceType=TRANSACTIONAL_ID, name=tx, patternType=LITERAL)`:\n{}{}\n",
            topic_pattern("in", "LITERAL"),
            carol("READ"),
            carol("DESCRIBE"),
            topic_pattern("out", "LITERAL"),
            bob("WRITE"),
            bob("DESCRIBE"),
            bob("CREATE"),
            carol("READ"),
            bob("IDEMPOTENT_WRITE"),
            bob("WRITE"),
            bob("DESCRIBE"),
        )
    );
    let deny = acls(&[
        "--add",
        "--deny-principal",
        "User:mallory",
        "--deny-host",
        "10.0.0.1",
        "--operation",
        "Read",
        "--topic",
        "in",
    ])
    .ok();
    assert!(
        deny.contains(
            " \t(principal=User:mallory, host=10.0.0.1, operation=READ, permissionType=DENY)\n"
        ),
        "{deny}"
    );
}

#[test]
fn granted_acls_take_effect_and_refusals_are_explained() {
    let broker = secured_broker();
    let admin = login("admin", "admin-secret", "PLAIN");
    let alice = login("alice", "alice-secret", "PLAIN");
    as_user(&broker, &admin, &["topics", "create", "--topic", "t"]).ok();
    let produce =
        |stdin: &str| as_user_with_stdin(&broker, &alice, &["produce", "--topic", "t"], stdin);
    assert_ne!(produce("refused\n").code, 0, "alice has no ACL yet");
    as_user(
        &broker,
        &admin,
        &[
            "acls",
            "--add",
            "--producer",
            "--allow-principal",
            "User:alice",
            "--topic",
            "t",
        ],
    )
    .ok();
    produce("allowed\n").ok();

    // A non-super user may not manage ACLs.
    let err = as_user(&broker, &alice, &["acls", "--list"]).fails(1);
    assert!(err.contains(": CLUSTER_AUTHORIZATION_FAILED"), "{err}");
    assert!(
        err.contains("hint: managing ACLs needs ALTER on the cluster"),
        "{err}"
    );
    let err = as_user(
        &broker,
        &alice,
        &[
            "acls",
            "--add",
            "--allow-principal",
            "User:alice",
            "--topic",
            "x",
        ],
    )
    .fails(1);
    assert!(err.contains(": CLUSTER_AUTHORIZATION_FAILED"), "{err}");

    // Usage errors, before anything is sent.
    let usage = |args: &[&str]| as_user(&broker, &admin, &[&["acls"], args].concat()).fails(2);
    let err = usage(&["--add", "--topic", "x"]);
    assert!(
        err.contains("--add needs --allow-principal or --deny-principal"),
        "{err}"
    );
    let err = usage(&[
        "--add",
        "--allow-principal",
        "User:a",
        "--operation",
        "Read",
        "--cluster",
    ]);
    assert!(
        err.contains("resource type CLUSTER does not support operation(s) READ"),
        "{err}"
    );
    let err = usage(&["--add", "--allow-principal", "alice", "--topic", "x"]);
    assert!(err.contains("invalid principal 'alice'"), "{err}");
    let err = usage(&[
        "--add",
        "--allow-principal",
        "User:a",
        "--topic",
        "x",
        "--resource-pattern-type",
        "match",
    ]);
    assert!(err.contains("not valid with --add"), "{err}");
    let err = usage(&[
        "--add",
        "--allow-principal",
        "User:a",
        "--operation",
        "Fly",
        "--topic",
        "x",
    ]);
    assert!(err.contains("unknown operation"), "{err}");
    let err = usage(&["--remove", "--allow-principal", "User:a"]);
    assert!(err.contains("no resource given"), "{err}");
    let err = usage(&[
        "--add",
        "--consumer",
        "--allow-principal",
        "User:a",
        "--topic",
        "x",
    ]);
    assert!(
        err.contains("--consumer needs --topic and --group"),
        "{err}"
    );
    usage(&["--list", "--add"]);
}

#[test]
fn acl_commands_without_an_authorizer_say_security_is_disabled() {
    let broker = start_broker();
    let err = broker.cli(&["acls", "--list"]).fails(1);
    assert!(
        err.starts_with(
            "sluice: error: describing ACLs: SECURITY_DISABLED (No Authorizer is configured.)\n"
        ),
        "{err}"
    );
    assert!(err.contains("hint: the broker has no authorizer"), "{err}");
    let err = broker
        .cli(&[
            "acls",
            "--add",
            "--allow-principal",
            "User:a",
            "--topic",
            "t",
        ])
        .fails(1);
    assert!(err.contains(": SECURITY_DISABLED"), "{err}");
    let err = broker.cli(&["acls", "--remove", "--topic", "t"]).fails(1);
    assert!(err.contains(": SECURITY_DISABLED"), "{err}");
}

#[test]
fn scram_users_are_added_described_log_in_and_are_deleted() {
    let broker = secured_broker();
    let admin = login("admin", "admin-secret", "PLAIN");
    let users = |args: &[&str]| as_user(&broker, &admin, &[&["users"], args].concat());

    assert_eq!(users(&["--list"]).ok(), "");
    assert_eq!(
        users(&[
            "--add",
            "carol",
            "--mechanism",
            "SCRAM-SHA-256",
            "--password",
            "carol-pw",
            "--iterations",
            "8192"
        ])
        .ok(),
        "Completed: SCRAM-SHA-256 credentials of user 'carol' updated.\n"
    );
    users(&[
        "--add",
        "carol",
        "--mechanism",
        "scram-sha-512",
        "--password",
        "carol-pw",
    ])
    .ok();
    users(&[
        "--add",
        "dave",
        "--mechanism",
        "SCRAM-SHA-512",
        "--password",
        "dave-pw",
    ])
    .ok();
    assert_eq!(users(&["--list"]).ok(), "carol\ndave\n");
    assert_eq!(
        users(&["--describe", "--user", "carol"]).ok(),
        "SCRAM credential configs for user-principal 'carol' are SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&users(&["--describe", "--output", "json"]).ok()).unwrap();
    assert_eq!(
        json[1],
        serde_json::json!({"user": "dave", "credentials":
        [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]})
    );

    // The new user logs in with either mechanism through the CLI's own SCRAM client; a
    // wrong password is refused.
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let carol = login("carol", "carol-pw", mechanism);
        as_user(&broker, &carol, &["topics", "list"]).ok();
    }
    let wrong = login("carol", "nope", "SCRAM-SHA-256");
    let err = as_user(&broker, &wrong, &["topics", "list"]).fails(1);
    assert!(
        err.contains("SASL authentication (SCRAM-SHA-256) as carol"),
        "{err}"
    );

    assert_eq!(
        users(&["--delete", "carol", "--mechanism", "SCRAM-SHA-256"]).ok(),
        "Completed: SCRAM-SHA-256 credentials of user 'carol' deleted.\n"
    );
    assert_eq!(
        users(&["--describe", "--user", "carol"]).ok(),
        "SCRAM credential configs for user-principal 'carol' are SCRAM-SHA-512=iterations=4096\n"
    );
    let carol256 = login("carol", "carol-pw", "SCRAM-SHA-256");
    as_user(&broker, &carol256, &["topics", "list"]).fails(1);

    let err = users(&["--delete", "carol", "--mechanism", "SCRAM-SHA-256"]).fails(1);
    assert!(err.contains(": RESOURCE_NOT_FOUND"), "{err}");
    let err = users(&["--describe", "--user", "nobody"]).fails(1);
    assert!(err.contains(": RESOURCE_NOT_FOUND"), "{err}");
    let err = users(&[
        "--add",
        "x",
        "--mechanism",
        "SCRAM-SHA-256",
        "--password",
        "p",
        "--iterations",
        "100",
    ])
    .fails(2);
    assert!(err.contains("--iterations 100 is out of range"), "{err}");
    users(&["--add", "x", "--mechanism", "SCRAM-SHA-256"]).fails(2);
    users(&["--add", "x", "--mechanism", "MD5", "--password", "p"]).fails(2);
    let alice = login("alice", "alice-secret", "PLAIN");
    let err = as_user(
        &broker,
        &alice,
        &[
            "users",
            "--add",
            "eve",
            "--mechanism",
            "SCRAM-SHA-256",
            "--password",
            "p",
        ],
    )
    .fails(1);
    assert!(err.contains(": CLUSTER_AUTHORIZATION_FAILED"), "{err}");
}
