//! `sluice configs describe|alter` for a topic (`--topic`) or a broker (`--broker ID`), like
//! kafka-configs.sh. Describe shows overrides by default and everything with `--all`.

use clap::{Args, Subcommand};

use crate::client::admin::{ConfigEntry, RESOURCE_BROKER, RESOURCE_TOPIC};

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

/// Which resource: exactly one of --topic and --broker.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Resource {
    /// Topic whose configs to show or change.
    #[arg(long)]
    pub topic: Option<String>,
    /// Broker id (on Sluice: node_id * 1000 + core).
    #[arg(long)]
    pub broker: Option<i32>,
}

impl Resource {
    fn key(&self) -> (i8, String, String) {
        match (&self.topic, self.broker) {
            (Some(t), _) => (RESOURCE_TOPIC, t.clone(), format!("topic {t}")),
            (None, Some(b)) => (RESOURCE_BROKER, b.to_string(), format!("broker {b}")),
            // clap's group makes one of the two required.
            (None, None) => unreachable!("clap requires --topic or --broker"),
        }
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
    let (kind, name, label) = a.resource.key();
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
    let (kind, name, label) = a.resource.key();
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
