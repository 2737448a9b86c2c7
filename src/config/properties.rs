//! Parser for Java-style `.properties` files (the format of Kafka's server.properties):
//! `key=value` or `key: value`, `#`/`!` comments, blank lines, and a line ending in an odd
//! number of backslashes continuing on the next (Kafka's JAAS values are written that way).
//! Unicode escapes are not supported; a line we cannot read is an error naming its number.

use std::collections::BTreeMap;

/// A properties file that cannot be read as Java reads it.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    /// A logical line with neither `=` nor `:`, or with an empty key.
    #[error("line {line}: expected key=value, found {text:?}")]
    Malformed {
        /// 1-based number of the line the logical line starts on.
        line: usize,
        /// The logical line as read (continuations joined).
        text: String,
    },
}

/// Parses a properties file: `key=value` or `key: value` lines (split at the first `=` or
/// `:`, both sides trimmed), `#` and `!` comments, and lines continued by an odd number of
/// trailing backslashes. Unlike Java, a key may not be separated by whitespace alone.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, PropertiesError> {
    let mut out = BTreeMap::new();
    for (index, logical) in logical_lines(text) {
        let raw = logical.as_str();
        let line = raw.trim();
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

/// The file's logical lines with the number of the line each starts on: comments and blank
/// lines dropped, continued lines joined (the backslash removed, the next line's leading
/// whitespace skipped), as Java's `Properties.load` reads them.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, first)) = lines.next() {
        let trimmed = first.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = trimmed.to_string();
        while continues(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        out.push((index, logical));
    }
    out
}

/// Whether a line ends in an odd number of backslashes (an even number is escaped ones).
fn continues(line: &str) -> bool {
    line.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
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

    #[test]
    fn continued_lines_are_joined_as_java_reads_them() {
        let text = "sasl.jaas.config=org.example.PlainLoginModule required \\\n    user_alice=\"a\" \\\n    user_bob=\"b\";\n# comment \\\nnext=1\n";
        let p = parse_properties(text).unwrap();
        assert_eq!(
            p["sasl.jaas.config"],
            "org.example.PlainLoginModule required user_alice=\"a\" user_bob=\"b\";"
        );
        assert_eq!(
            p["next"], "1",
            "a comment ending in a backslash does not continue"
        );
        let escaped = parse_properties("path=C:\\\\\nother=2\n").unwrap();
        assert_eq!(
            escaped["path"], "C:\\\\",
            "an even number of backslashes is no continuation"
        );
        assert_eq!(escaped["other"], "2");
    }
}
