//! `sluice users`: SCRAM users (KIP-554), what kafka-configs.sh does with `--entity-type users
//! --add-config 'SCRAM-SHA-256=[...]'`, as plain flags: `--list`, `--describe [--user U]`,
//! `--add U --mechanism M --password P [--iterations N]`, `--delete U --mechanism M`.
//!
//! The password stays in this process: `--add` draws a random salt and runs PBKDF2 here, and
//! only the salt and the salted password reach the broker, as KIP-554 specifies.

use clap::{ArgGroup, Args};
use kafka_protocol::ResponseError;

use crate::client::ClientError;
use crate::client::scram::{CredentialInfo, ScramAlteration};
use crate::protocol::scram::ScramHash;

use super::acls::refusal_message;
use super::{CliError, Common, OutputFormat, print_json};

/// The iteration counts Kafka accepts for both mechanisms (checked here too, so a typo does
/// not first spend minutes in PBKDF2).
const ITERATIONS: std::ops::RangeInclusive<i32> = 4096..=16384;

/// Arguments of `sluice users`: exactly one of `--list`, `--describe`, `--add`, `--delete`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("action").required(true).args(["list", "describe", "add", "delete"])))]
pub struct UsersArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// List the users that have SCRAM credentials.
    #[arg(long)]
    pub list: bool,
    /// Show users' mechanisms and iteration counts (all users, or those named with --user).
    #[arg(long)]
    pub describe: bool,
    /// With --describe: the user to show; repeatable.
    #[arg(long = "user", value_name = "USER", requires = "describe")]
    pub users: Vec<String>,
    /// Set a SCRAM credential of this user (needs --mechanism and --password).
    #[arg(long, value_name = "USER", requires_all = ["mechanisms", "password"])]
    pub add: Option<String>,
    /// Remove a SCRAM credential of this user (needs --mechanism).
    #[arg(long, value_name = "USER", requires = "mechanisms")]
    pub delete: Option<String>,
    /// SCRAM-SHA-256 or SCRAM-SHA-512; repeatable (one credential per mechanism).
    #[arg(long = "mechanism", value_name = "MECHANISM", value_parser = parse_mechanism)]
    pub mechanisms: Vec<ScramHash>,
    /// The password of --add (visible to other local users in the process list, as with
    /// kafka-configs.sh).
    #[arg(long, requires = "add")]
    pub password: Option<String>,
    /// PBKDF2 iterations of --add (4096..=16384).
    #[arg(long, default_value_t = 4096)]
    pub iterations: i32,
}

fn parse_mechanism(text: &str) -> Result<ScramHash, String> {
    ScramHash::of_mechanism(&text.trim().to_ascii_uppercase())
        .ok_or_else(|| "expected SCRAM-SHA-256 or SCRAM-SHA-512".to_string())
}

/// Runs `sluice users`.
pub fn run(a: UsersArgs) -> Result<(), CliError> {
    if let Some(user) = &a.add {
        add(&a, user)
    } else if let Some(user) = &a.delete {
        delete(&a, user)
    } else {
        describe(&a)
    }
}

/// One user in `--describe --output json`.
#[derive(serde::Serialize)]
struct UserReport<'a> {
    user: &'a str,
    credentials: &'a [CredentialInfo],
}

fn describe(a: &UsersArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let mut described = Vec::new();
    for (user, result) in client.describe_scram(&a.users).map_err(explain)? {
        described.push((user, result.map_err(explain)?));
    }
    let json = a.common.output == OutputFormat::Json;
    if a.list {
        let names: Vec<&str> = described.iter().map(|(u, _)| u.as_str()).collect();
        if json {
            return print_json(&names);
        }
        names.iter().for_each(|u| println!("{u}"));
        return Ok(());
    }
    if json {
        let reports: Vec<UserReport> = described
            .iter()
            .map(|(user, credentials)| UserReport { user, credentials })
            .collect();
        return print_json(&reports);
    }
    for (user, credentials) in &described {
        // kafka-configs.sh's wording, so scripts that parse it keep working.
        let list: Vec<String> = credentials
            .iter()
            .map(|c| format!("{}=iterations={}", c.mechanism, c.iterations))
            .collect();
        println!(
            "SCRAM credential configs for user-principal '{user}' are {}",
            list.join(", ")
        );
    }
    Ok(())
}

fn add(a: &UsersArgs, user: &str) -> Result<(), CliError> {
    if !ITERATIONS.contains(&a.iterations) {
        return Err(CliError::usage(
            format!("--iterations {} is out of range", a.iterations),
            "Kafka accepts 4096 to 16384 iterations",
        ));
    }
    // Invariant: clap's `requires_all` makes --add come with --password.
    let password = a.password.as_deref().expect("clap requires --password");
    if password.is_empty() {
        return Err(CliError::usage(
            "--password is empty",
            "pass a non-empty --password",
        ));
    }
    let alterations: Vec<ScramAlteration> = a
        .mechanisms
        .iter()
        .map(|&m| ScramAlteration::upsert(user, m, password, a.iterations))
        .collect();
    alter(a, user, &alterations, "updated")
}

fn delete(a: &UsersArgs, user: &str) -> Result<(), CliError> {
    let alterations: Vec<ScramAlteration> = a
        .mechanisms
        .iter()
        .map(|&mechanism| ScramAlteration::Delete {
            user: user.to_string(),
            mechanism,
        })
        .collect();
    alter(a, user, &alterations, "deleted")
}

fn alter(
    a: &UsersArgs,
    user: &str,
    alterations: &[ScramAlteration],
    done: &str,
) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    for (_, result) in client.alter_scram(alterations).map_err(explain)? {
        result.map_err(explain)?;
    }
    let mechanisms: Vec<&str> = a.mechanisms.iter().map(|m| m.mechanism()).collect();
    match a.common.output {
        OutputFormat::Json => print_json(&serde_json::json!({
            "user": user, "mechanisms": mechanisms, "result": done,
        })),
        OutputFormat::Table => {
            println!(
                "Completed: {} credentials of user '{user}' {done}.",
                mechanisms.join(", ")
            );
            Ok(())
        }
    }
}

/// The broker's refusals, in the operator's terms.
fn explain(e: ClientError) -> CliError {
    let hint = match e.kafka_error() {
        Some(ResponseError::ResourceNotFound) => {
            "the user has no such SCRAM credential; see them with `sluice users --describe`"
        }
        Some(ResponseError::UnacceptableCredential) => {
            "user names and passwords must not be empty, iterations 4096 to 16384"
        }
        Some(ResponseError::UnsupportedSaslMechanism) => {
            "use --mechanism SCRAM-SHA-256 or SCRAM-SHA-512"
        }
        Some(ResponseError::DuplicateResource) => "name each user and mechanism once",
        Some(ResponseError::ClusterAuthorizationFailed) => {
            "managing SCRAM users needs ALTER on the cluster (DESCRIBE to list): pass --command-config with a super user's credentials (super.users)"
        }
        _ => return CliError::Client(e),
    };
    CliError::explained(refusal_message(&e), hint)
}
