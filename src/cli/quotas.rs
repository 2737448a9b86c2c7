//! The client quota half of `sluice configs` (kafka-configs.sh's `--entity-type users|clients`):
//! describe with DescribeClientQuotas, alter with AlterClientQuotas. `configs.rs` parses the
//! entity options and hands the entity here.

use crate::client::quotas::{Entity, Match, QuotaEntry};

use super::table::Table;
use super::{CliError, Common, Outcome, OutputFormat, parse_key_values, print_json};

/// Shows the quotas of the entities matching `filter`: named entities exactly (only those
/// types, as kafka-configs.sh does), an entity type without a name any entity having it.
pub fn describe(common: &Common, filter: &[(String, Match)]) -> Result<(), CliError> {
    let strict = !filter.is_empty() && filter.iter().all(|(_, m)| !matches!(m, Match::Any));
    let mut client = common.connect()?;
    let entries = client.describe_client_quotas(filter, strict)?;
    match common.output {
        OutputFormat::Json => print_json(&entries),
        OutputFormat::Table => {
            let mut table = Table::new(&["ENTITY", "QUOTA", "VALUE"]);
            for e in &entries {
                for (key, value) in &e.values {
                    table.row(vec![label(e), key.clone(), value.to_string()]);
                }
            }
            table.print();
            Ok(())
        }
    }
}

/// `user=alice, client-id=<default>`: kafka-configs.sh's spelling of an entity.
fn label(e: &QuotaEntry) -> String {
    e.entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets (`--add-config k=v,...`) and removes (`--delete-config k,...`) quotas of one entity.
pub fn alter(
    common: &Common,
    filter: &[(String, Match)],
    add: Option<&str>,
    delete: Option<&str>,
) -> Result<(), CliError> {
    let entity: Entity = filter
        .iter()
        .map(|(t, m)| match m {
            Match::Exact(n) => Ok((t.clone(), Some(n.clone()))),
            Match::Default => Ok((t.clone(), None)),
            Match::Any => Err(CliError::usage(
                "which entity?",
                "name it with --entity-name NAME or --entity-default",
            )),
        })
        .collect::<Result<_, _>>()?;
    let set = parse_key_values(add.unwrap_or(""), "--add-config")?
        .into_iter()
        .map(|(k, v)| match v.trim().parse::<f64>() {
            Ok(value) => Ok((k, value)),
            Err(_) => Err(CliError::usage(
                format!("quota {k}={v} is not a number"),
                "quotas are numbers, e.g. producer_byte_rate=1048576",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let remove: Vec<String> = delete
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    if set.is_empty() && remove.is_empty() {
        return Err(CliError::usage(
            "nothing to alter",
            "pass --add-config name=value[,name2=value2] and/or --delete-config name[,name2]",
        ));
    }
    let mut client = common.connect()?;
    client.alter_client_quotas(&entity, &set, &remove)?;
    let name = label(&QuotaEntry {
        entity,
        values: Vec::new(),
    });
    match common.output {
        OutputFormat::Table => println!("Completed updating client quotas of {name}."),
        OutputFormat::Json => {
            return Outcome {
                resource: "client-quota",
                name: &name,
                result: "altered",
            }
            .print();
        }
    }
    Ok(())
}
