//! One entry of the broker key table (`broker_keys.rs`): the key's Kafka name, its default,
//! how its value is parsed into a [`BrokerConfig`] and shown. Used on the main thread while
//! the configuration is read, and by DescribeConfigs on the shards (read-only).

use super::{BrokerConfig, ConfigError};

/// One broker key.
pub struct BrokerKey {
    /// Kafka's name (Sluice's own keys start with `sluice.`).
    pub name: &'static str,
    /// Older Kafka names read the same way (`broker.id`, `log.dir`); the value is shown under
    /// `name` only.
    pub aliases: &'static [&'static str],
    /// The value used when neither the file nor a flag sets the key.
    pub default: KeyDefault,
    /// What the key sets, in a line.
    pub doc: &'static str,
    /// The value holds secrets: errors show `(hidden)` instead, and DescribeConfigs gives no
    /// value. Such keys have no `show`.
    pub sensitive: bool,
    /// Parses `value`, given under `key` (the name or an alias, so errors name what the
    /// operator wrote), into the configuration.
    pub parse: fn(&mut BrokerConfig, &str, &str) -> Result<(), ConfigError>,
    /// The effective value for `--print-config` and DescribeConfigs. `None`: the key is not
    /// listed there (secrets; and the group keys that were never listed, which DescribeConfigs
    /// still shows when the file sets them).
    pub show: Option<fn(&BrokerConfig) -> String>,
}

/// Where a key's value comes from when the operator does not set it.
pub enum KeyDefault {
    /// Parsed by the key's own `parse` before the file is read, so a default obeys the same
    /// rules as a value from the file.
    Value(&'static str),
    /// Depends on other settings or on the machine; `from_properties` (or the field's own
    /// `Default`) supplies it. The text says how, for readers of the table.
    Computed(&'static str),
    /// No value unless set.
    Unset,
}

impl BrokerKey {
    /// Applies `value`, given under `key`, with secrets kept out of the error.
    pub fn apply(&self, cfg: &mut BrokerConfig, key: &str, value: &str) -> Result<(), ConfigError> {
        (self.parse)(cfg, key, value).map_err(|e| if self.sensitive { e.hidden() } else { e })
    }

    /// Whether `key` names this entry, by its name or an alias.
    pub fn answers_to(&self, key: &str) -> bool {
        self.name == key || self.aliases.contains(&key)
    }
}
