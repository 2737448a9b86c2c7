//! Parser for Java-style `.properties` files (the format of Kafka's server.properties):
//! `key=value` or `key: value`, `#`/`!` comments, blank lines. Continuation lines and unicode
//! escapes are not supported; a line we cannot read is an error naming its number.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    #[error("line {line}: expected key=value, found {text:?}")]
    Malformed { line: usize, text: String },
}

pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, PropertiesError> {
    let mut out = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']);
        let Some(at) = split else {
            return Err(PropertiesError::Malformed {
                line: index + 1,
                text: raw.to_string(),
            });
        };
        let key = line[..at].trim();
        if key.is_empty() {
            return Err(PropertiesError::Malformed {
                line: index + 1,
                text: raw.to_string(),
            });
        }
        out.insert(key.to_string(), line[at + 1..].trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_comments_and_both_separators() {
        let p = parse_properties("# c\n\nnum.partitions = 3\nlog.dirs: /tmp/x\n! bang\n").unwrap();
        assert_eq!(p["num.partitions"], "3");
        assert_eq!(p["log.dirs"], "/tmp/x");
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn a_line_without_separator_names_its_number() {
        let err = parse_properties("a=1\nnonsense\n").unwrap_err();
        assert!(err.to_string().contains("line 2"));
    }
}
