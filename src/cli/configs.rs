//! `sluice configs describe|alter` for a topic (`--topic`) or a broker (`--broker ID`), like
//! kafka-configs.sh. Describe shows overrides by default and everything with `--all`.
//! Client quotas (`producer_byte_rate`, ...) take kafka-configs.sh's entity options instead:
//! `--entity-type users|clients` with `--entity-name X` or `--entity-default`, or
//! `--user X`/`--user-defaults` and `--client X`/`--client-defaults` combined for a
//! user + client-id entity; they are described and altered with DescribeClientQuotas and
//! AlterClientQuotas (`cli/quotas.rs`).

use clap::{Args, Subcommand};

use crate::client::admin::{ConfigEntry, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::client::quotas::Match;
use crate::quota::entity::{CLIENT_ID, USER};

use super::table::Table;
use super::topics::unsupported_alter;
use super::{CliError, Common, Outcome, OutputFormat, parse_key_values, print_json};

/// The `sluice configs` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigsCommand {
    /// Show configs and where each value comes from.
    Describe(DescribeArgs),
    /// Set configs (IncrementalAlterConfigs).
    Alter(AlterArgs),
}

/// Which resource: a topic, a broker, or a client quota entity.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct Resource {
    /// Topic whose configs to show or change.
    #[arg(long, conflicts_with_all = ["broker", "entity_type", "user", "user_defaults", "client", "client_defaults"])]
    pub topic: Option<String>,
    /// Broker id (on Sluice: node_id * 1000 + core).
    #[arg(long, conflicts_with_all = ["entity_type", "user", "user_defaults", "client", "client_defaults"])]
    pub broker: Option<i32>,
    /// Client quotas of a user or client id, as kafka-configs.sh: named with --entity-name
    /// or --entity-default (describe without either: every entity of the type).
    #[arg(long, value_parser = ["users", "clients"], conflicts_with_all = ["user", "user_defaults", "client", "client_defaults"])]
    pub entity_type: Option<String>,
    /// The user or client id of --entity-type.
    #[arg(long, requires = "entity_type", conflicts_with = "entity_default")]
    pub entity_name: Option<String>,
    /// The default user or client id of --entity-type.
    #[arg(long, requires = "entity_type")]
    pub entity_default: bool,
    /// Client quotas of this user (with --client: of this user and client id).
    #[arg(long, conflicts_with = "user_defaults")]
    pub user: Option<String>,
    /// Client quotas of the default user.
    #[arg(long)]
    pub user_defaults: bool,
    /// Client quotas of this client id (with --user: of that user and this client id).
    #[arg(long, conflicts_with = "client_defaults")]
    pub client: Option<String>,
    /// Client quotas of the default client id.
    #[arg(long)]
    pub client_defaults: bool,
}

/// What `Resource` names.
enum Target {
    /// A topic or broker config resource: (type, name, label).
    Config(i8, String, String),
    /// A client quota entity as (entity type, match).
    Quota(Vec<(String, Match)>),
}

impl Resource {
    fn target(&self) -> Target {
        if let Some(t) = &self.topic {
            return Target::Config(RESOURCE_TOPIC, t.clone(), format!("topic {t}"));
        }
        if let Some(b) = self.broker {
            return Target::Config(RESOURCE_BROKER, b.to_string(), format!("broker {b}"));
        }
        let component = |name: &Option<String>, default: bool| match (name, default) {
            (Some(n), _) => Some(Match::Exact(n.clone())),
            (None, true) => Some(Match::Default),
            (None, false) => None,
        };
        let mut entity = Vec::new();
        if let Some(t) = &self.entity_type {
            let entity_type = if t == "users" { USER } else { CLIENT_ID };
            let m = component(&self.entity_name, self.entity_default).unwrap_or(Match::Any);
            entity.push((entity_type.to_string(), m));
        }
        if let Some(m) = component(&self.user, self.user_defaults) {
            entity.push((USER.to_string(), m));
        }
        if let Some(m) = component(&self.client, self.client_defaults) {
            entity.push((CLIENT_ID.to_string(), m));
        }
        Target::Quota(entity)
    }
}

/// Arguments of `sluice configs describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// The topic or broker whose configs to show.
    #[command(flatten)]
    pub resource: Resource,
    /// Include values left at their defaults.
    #[arg(long)]
    pub all: bool,
}

/// Arguments of `sluice configs alter`.
#[derive(Debug, Args)]
pub struct AlterArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// The topic or broker whose configs to change.
    #[command(flatten)]
    pub resource: Resource,
    /// Configs to set: name=value,name2=value2.
    #[arg(
        long,
        value_name = "K=V,...",
        required_unless_present = "delete_config"
    )]
    pub add_config: Option<String>,
    /// Configs to remove (back to the broker's or the default value): name,name2.
    #[arg(long, value_name = "K,...")]
    pub delete_config: Option<String>,
}

/// Runs one `sluice configs` subcommand.
pub fn run(command: ConfigsCommand) -> Result<(), CliError> {
    match command {
        ConfigsCommand::Describe(a) => describe(a),
        ConfigsCommand::Alter(a) => alter(a),
    }
}

#[derive(serde::Serialize)]
struct ConfigsReport<'a> {
    resource: &'a str,
    configs: &'a [ConfigEntry],
}

fn describe(a: DescribeArgs) -> Result<(), CliError> {
    let (kind, name, label) = match a.resource.target() {
        Target::Config(kind, name, label) => (kind, name, label),
        Target::Quota(entity) => return super::quotas::describe(&a.common, &entity),
    };
    let mut client = a.common.connect()?;
    if kind == RESOURCE_TOPIC {
        // A clear "does not exist" beats the broker's bare error code.
        client.topic(&name)?;
    }
    let entries: Vec<ConfigEntry> = client
        .describe_configs(kind, &name)?
        .into_iter()
        .filter(|e| a.all || e.is_override())
        .collect();
    match a.common.output {
        OutputFormat::Json => print_json(&ConfigsReport {
            resource: &label,
            configs: &entries,
        }),
        OutputFormat::Table => {
            let which = if a.all { "All" } else { "Non-default" };
            println!("{which} configs for {label}:");
            let mut table = Table::new(&["NAME", "VALUE", "SOURCE", "READ-ONLY"]);
            for e in &entries {
                let value = if e.sensitive {
                    "(sensitive)".to_string()
                } else {
                    e.value.clone().unwrap_or_else(|| "null".into())
                };
                table.row(vec![
                    e.name.clone(),
                    value,
                    e.source.to_string(),
                    e.read_only.to_string(),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

fn alter(a: AlterArgs) -> Result<(), CliError> {
    let (kind, name, label) = match a.resource.target() {
        Target::Config(kind, name, label) => (kind, name, label),
        Target::Quota(entity) => {
            return super::quotas::alter(
                &a.common,
                &entity,
                a.add_config.as_deref(),
                a.delete_config.as_deref(),
            );
        }
    };
    let set = match &a.add_config {
        Some(text) => parse_key_values(text, "--add-config")?,
        None => Vec::new(),
    };
    let delete: Vec<String> = a
        .delete_config
        .iter()
        .flat_map(|text| text.split(','))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    if set.is_empty() && delete.is_empty() {
        return Err(CliError::usage(
            "nothing to alter",
            "pass --add-config name=value[,name2=value2] and/or --delete-config name[,name2]",
        ));
    }
    let mut client = a.common.connect()?;
    if kind == RESOURCE_TOPIC {
        client.topic(&name)?;
    }
    client
        .alter_configs(kind, &name, &set, &delete)
        .map_err(|e| unsupported_alter(e, &a.common.bootstrap_server))?;
    match a.common.output {
        OutputFormat::Table => println!("Completed updating config for {label}."),
        OutputFormat::Json => {
            let (resource, name) = label.split_once(' ').unwrap_or(("", &label));
            return Outcome {
                resource,
                name,
                result: "altered",
            }
            .print();
        }
    }
    Ok(())
}
