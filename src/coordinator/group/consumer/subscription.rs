//! Subscriptions resolved against the topics that exist: by name, and by regular expression
//! (KIP-848 takes RE2/J syntax; the `regex` crate speaks RE2's, and a topic matches when the
//! whole name does, as Java's `Matcher.matches`).
//!
//! Runs on the group coordinator's shard, inside a heartbeat.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use regex::Regex;
use uuid::Uuid;

use super::{ConsumerMember, Topics};

/// Longest regular expression a member may subscribe with; longer ones get
/// INVALID_REGULAR_EXPRESSION.
pub const MAX_REGEX_LEN: usize = 1_000;

/// Compiled regexes kept per thread (each shard is one), so a heartbeat does not compile its
/// member's regex again; cleared when full, since a client can make up any number of them.
/// Each program is at most `REGEX_PROGRAM_BYTES`, so the cache holds at most 64 MiB a shard.
const REGEX_CACHE_ENTRIES: usize = 64;

/// Largest compiled program of one subscription regex.
const REGEX_PROGRAM_BYTES: usize = 1 << 20;

thread_local! {
    static COMPILED: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// Compiles a subscription regex for whole-name matching; `None` when it does not parse (or
/// is too long, or would compile to too large a program).
pub fn compile(regex: &str) -> Option<Regex> {
    if regex.len() > MAX_REGEX_LEN {
        return None;
    }
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(compiled) = cache.get(regex) {
            return compiled.clone();
        }
        if cache.len() >= REGEX_CACHE_ENTRIES {
            cache.clear();
        }
        let compiled = regex::RegexBuilder::new(&format!("^(?:{regex})$"))
            .size_limit(REGEX_PROGRAM_BYTES)
            .build()
            .ok();
        cache.insert(regex.to_owned(), compiled.clone());
        compiled
    })
}

/// The topics `member` subscribes to that exist, by name -> (id, partitions).
pub fn member_topics(member: &ConsumerMember, topics: &Topics) -> BTreeMap<String, (Uuid, i32)> {
    let mut out = BTreeMap::new();
    for name in &member.subscribed_topic_names {
        if let Some(t) = topics.get(name) {
            out.insert(t.name.clone(), (t.id, t.partitions));
        }
    }
    if let Some(regex) = member.subscribed_topic_regex.as_deref().and_then(compile) {
        for t in topics.iter().filter(|t| regex.is_match(&t.name)) {
            out.insert(t.name.clone(), (t.id, t.partitions));
        }
    }
    out
}

/// The union of every member's topics.
pub fn group_topics<'a>(
    members: impl IntoIterator<Item = &'a ConsumerMember>,
    topics: &Topics,
) -> BTreeMap<String, (Uuid, i32)> {
    let mut out = BTreeMap::new();
    for member in members {
        out.extend(member_topics(member, topics));
    }
    out
}
