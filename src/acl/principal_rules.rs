//! `ssl.principal.mapping.rules`: how a client certificate's distinguished name becomes the user
//! of its `User:` principal, in Kafka's syntax (KIP-371): a comma-separated list of
//! `RULE:pattern/replacement/` (optionally `/L` or `/U` to lower- or upper-case the result) and
//! `DEFAULT` (the whole DN). The first rule whose pattern matches the whole DN decides; no match
//! refuses the client. Parsed with the configuration on the main thread; applied on the shard
//! that completes a TLS handshake.

use regex::Regex;

/// One parsed rule.
#[derive(Debug, Clone)]
enum Rule {
    /// The DN as it is.
    Default,
    /// A pattern that must match the whole DN, its replacement (`$1` refers to groups, as in
    /// Java) and the case change.
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// The parsed rules; the default is `DEFAULT` alone, as in Kafka.
#[derive(Debug, Clone)]
pub struct PrincipalRules {
    rules: Vec<Rule>,
}

impl Default for PrincipalRules {
    fn default() -> Self {
        Self {
            rules: vec![Rule::Default],
        }
    }
}

impl PrincipalRules {
    /// Parses the key's value; the error says where it stopped making sense.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut rest = value.trim_start();
        while !rest.is_empty() {
            let (rule, after) = parse_rule(rest)?;
            rules.push(rule);
            rest = after.trim_start();
            match rest.strip_prefix(',') {
                Some(next) => rest = next.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("expected ',' before {rest:?}")),
            }
        }
        if rules.is_empty() {
            return Err("no rule given (DEFAULT keeps the whole DN)".into());
        }
        Ok(Self { rules })
    }

    /// The user name for a certificate subject `dn` (RFC 2253 form); `None` when no rule
    /// matches, which refuses the client.
    pub fn user_of(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                let whole = pattern.find(dn).is_some_and(|m| m.as_str() == dn);
                if !whole {
                    return None;
                }
                let user = pattern.replace(dn, replacement.as_str()).into_owned();
                Some(match case {
                    Case::Keep => user,
                    Case::Lower => user.to_lowercase(),
                    Case::Upper => user.to_uppercase(),
                })
            }
        })
    }
}

/// One rule at the start of `text` and what follows it.
fn parse_rule(text: &str) -> Result<(Rule, &str), String> {
    if let Some(rest) = text.strip_prefix("DEFAULT") {
        return Ok((Rule::Default, rest));
    }
    let Some(rest) = text.strip_prefix("RULE:") else {
        return Err(format!(
            "{text:?} is neither DEFAULT nor RULE:pattern/replacement/"
        ));
    };
    let (pattern, rest) = until_slash(rest).ok_or("a RULE's pattern has no closing '/'")?;
    let (replacement, rest) = until_slash(rest).ok_or("a RULE's replacement has no closing '/'")?;
    let (case, rest) = match rest.chars().next() {
        Some('L') => (Case::Lower, &rest[1..]),
        Some('U') => (Case::Upper, &rest[1..]),
        _ => (Case::Keep, rest),
    };
    // Anchored so that `find` above prefers a match of the whole DN, as Java's matches().
    let pattern =
        Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
    Ok((
        Rule::Replace {
            pattern,
            replacement: java_replacement(&replacement),
            case,
        },
        rest,
    ))
}

/// The text up to the first unescaped `/` (with `\/` unescaped) and what follows the `/`.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some((out, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` group references as the regex crate writes them (`${1}`), so `$1a` keeps
/// meaning group 1 followed by `a`.
fn java_replacement(replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut group = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                group.push(d);
                chars.next();
            }
            out.push_str(&format!("${{{group}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_examples_map_as_documented() {
        let rules = PrincipalRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
             RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
             RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U,\
             DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules
                .user_of("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            rules
                .user_of("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(
            rules
                .user_of("cn=adminUser,ou=Admin,dc=example,dc=com")
                .as_deref(),
            Some("ADMINUSER@ADMIN")
        );
        assert_eq!(rules.user_of("CN=x,O=y").as_deref(), Some("CN=x,O=y"));
    }

    #[test]
    fn no_match_refuses_and_the_default_keeps_the_dn() {
        let rules = PrincipalRules::parse("RULE:^CN=([a-z]+)$/$1/").unwrap();
        assert_eq!(rules.user_of("CN=alice").as_deref(), Some("alice"));
        assert_eq!(rules.user_of("CN=alice,O=x"), None);
        assert_eq!(
            PrincipalRules::default().user_of("CN=a,O=b").as_deref(),
            Some("CN=a,O=b")
        );
        // An escaped slash belongs to the pattern.
        let rules = PrincipalRules::parse(r"RULE:^CN=(.*)\/x$/$1-ok/").unwrap();
        assert_eq!(rules.user_of("CN=a/x").as_deref(), Some("a-ok"));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "RULE:^CN=(.*)$",
            "RULE:^CN=(.*)$/$1",
            "NOPE",
            "RULE:(/$1/",
        ] {
            assert!(PrincipalRules::parse(bad).is_err(), "{bad}");
        }
    }
}
