//! Which configured quota applies to a request, with Kafka's precedence (its
//! `DefaultQuotaCallback`), most specific first:
//!
//! 1. user + client-id, 2. user + default client-id, 3. user,
//! 4. default user + client-id, 5. default user + default client-id, 6. default user,
//! 7. client-id, 8. default client-id.
//!
//! Each key is resolved on its own: the first entity in that order that sets the key wins, so
//! a user's `producer_byte_rate` and a client id's `consumer_byte_rate` can both apply. The
//! answer also names the sensor the usage is counted in, as Kafka's metric tags do: a quota
//! on a user alone (3, 6) is shared by all its client ids, a quota on a client id alone (7, 8)
//! by all users of that client id, and a default applies to each name separately.
//!
//! The index is built once per metadata change on each shard (`ShardQuotas`) and looked up
//! with borrowed names, so resolving allocates nothing.

use std::collections::HashMap;

use super::entity::{EntityName, QuotaConfigs, QuotaKey, QuotaValues};

/// The quota that applies and the sensor (Kafka's `user`/`client-id` metric tags; empty for
/// a tag the quota does not distinguish) its usage is recorded in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved<'a> {
    /// The bound: bytes per second, or a percentage of one thread.
    pub bound: f64,
    /// The user tag of the sensor (the user name, or empty).
    pub user_tag: &'a str,
    /// The client-id tag of the sensor (the client id, or empty).
    pub client_tag: &'a str,
}

/// The entities sharing one user component, by client-id component.
#[derive(Debug, Default)]
struct ClientLevel {
    named: HashMap<String, QuotaValues>,
    default: Option<QuotaValues>,
    none: Option<QuotaValues>,
}

impl ClientLevel {
    fn slot(&mut self, client: Option<&EntityName>) -> &mut Option<QuotaValues> {
        match client {
            None => &mut self.none,
            Some(EntityName::Default) => &mut self.default,
            Some(EntityName::Named(_)) => unreachable!("named client ids live in `named`"),
        }
    }

    fn insert(&mut self, client: Option<&EntityName>, values: QuotaValues) {
        match client {
            Some(EntityName::Named(c)) => {
                self.named.insert(c.clone(), values);
            }
            other => *self.slot(other) = Some(values),
        }
    }
}

/// The configured quotas arranged for lookup by (user, client id); see the module doc.
#[derive(Debug, Default)]
pub struct QuotaIndex {
    named_users: HashMap<String, ClientLevel>,
    default_user: ClientLevel,
    no_user: ClientLevel,
    empty: bool,
}

impl QuotaIndex {
    /// The index of `configs`.
    #[must_use]
    pub fn of(configs: &QuotaConfigs) -> Self {
        let mut index = Self {
            empty: configs.0.is_empty(),
            ..Self::default()
        };
        for (entity, values) in &configs.0 {
            let level = match &entity.user {
                None => &mut index.no_user,
                Some(EntityName::Default) => &mut index.default_user,
                Some(EntityName::Named(u)) => index.named_users.entry(u.clone()).or_default(),
            };
            level.insert(entity.client_id.as_ref(), values.clone());
        }
        index
    }

    /// Whether no quota is configured at all (the common case: nothing to record).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// The quota of `key` for `user` (the principal's name without `User:`) and `client`
    /// (the header's client id), if any entity sets it.
    #[must_use]
    pub fn resolve<'a>(
        &self,
        user: &'a str,
        client: &'a str,
        key: QuotaKey,
    ) -> Option<Resolved<'a>> {
        let named_user = self.named_users.get(user);
        let both = (user, client);
        let user_only = (user, "");
        let client_only = ("", client);
        let by_precedence = [
            (named_user.and_then(|l| l.named.get(client)), both),
            (named_user.and_then(|l| l.default.as_ref()), both),
            (named_user.and_then(|l| l.none.as_ref()), user_only),
            (self.default_user.named.get(client), both),
            (self.default_user.default.as_ref(), both),
            (self.default_user.none.as_ref(), user_only),
            (self.no_user.named.get(client), client_only),
            (self.no_user.default.as_ref(), client_only),
        ];
        by_precedence
            .into_iter()
            .find_map(|(values, (user_tag, client_tag))| {
                values?.get(&key).map(|v| Resolved {
                    bound: v.0,
                    user_tag,
                    client_tag,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::entity::{QuotaChange, QuotaEntity, QuotaValue};

    fn name(n: Option<&str>) -> EntityName {
        EntityName::from_wire(n)
    }

    /// One entity component: `None` = absent, `Some(None)` = default, `Some(Some(x))` = named.
    type Component<'a> = Option<Option<&'a str>>;

    fn set(
        configs: &mut QuotaConfigs,
        user: Component<'_>,
        client: Component<'_>,
        key: QuotaKey,
        value: f64,
    ) {
        configs.apply(&[QuotaChange {
            entity: QuotaEntity {
                user: user.map(name),
                client_id: client.map(name),
            },
            set: [(key, QuotaValue(value))].into(),
            remove: vec![],
        }]);
    }

    fn bound(index: &QuotaIndex, user: &str, client: &str) -> Option<(f64, String, String)> {
        index
            .resolve(user, client, QuotaKey::ProducerByteRate)
            .map(|r| (r.bound, r.user_tag.to_owned(), r.client_tag.to_owned()))
    }

    #[test]
    fn the_most_specific_entity_wins_in_kafkas_order() {
        use QuotaKey::ProducerByteRate as P;
        let mut c = QuotaConfigs::default();
        // Added least specific first, so each step shows the next one taking over.
        let levels: [(Component<'_>, Component<'_>); 8] = [
            (None, Some(None)),                       // 8 default client-id
            (None, Some(Some("app"))),                // 7 client-id
            (Some(None), None),                       // 6 default user
            (Some(None), Some(None)),                 // 5 default user + default client
            (Some(None), Some(Some("app"))),          // 4 default user + client-id
            (Some(Some("alice")), None),              // 3 user
            (Some(Some("alice")), Some(None)),        // 2 user + default client
            (Some(Some("alice")), Some(Some("app"))), // 1 user + client-id
        ];
        let tags = [
            ("", "app"),
            ("", "app"),
            ("alice", ""),
            ("alice", "app"),
            ("alice", "app"),
            ("alice", ""),
            ("alice", "app"),
            ("alice", "app"),
        ];
        assert_eq!(bound(&QuotaIndex::of(&c), "alice", "app"), None);
        for (i, ((user, client), (u, t))) in levels.into_iter().zip(tags).enumerate() {
            let value = 100.0 * (i as f64 + 1.0);
            set(&mut c, user, client, P, value);
            let got = bound(&QuotaIndex::of(&c), "alice", "app");
            assert_eq!(got, Some((value, u.into(), t.into())), "level {}", 8 - i);
        }
        // Other names fall through to the defaults that fit them.
        let index = QuotaIndex::of(&c);
        assert_eq!(
            bound(&index, "bob", "app"),
            Some((500.0, "bob".into(), "app".into()))
        );
        assert_eq!(
            bound(&index, "alice", "other"),
            Some((700.0, "alice".into(), "other".into()))
        );
        assert_eq!(
            bound(&index, "bob", "other"),
            Some((400.0, "bob".into(), "other".into()))
        );
    }

    #[test]
    fn each_key_resolves_on_its_own() {
        let mut c = QuotaConfigs::default();
        set(
            &mut c,
            Some(Some("alice")),
            Some(Some("app")),
            QuotaKey::ConsumerByteRate,
            1.0,
        );
        set(
            &mut c,
            None,
            Some(Some("app")),
            QuotaKey::ProducerByteRate,
            2.0,
        );
        let index = QuotaIndex::of(&c);
        let produce = index.resolve("alice", "app", QuotaKey::ProducerByteRate);
        assert_eq!(produce.map(|r| (r.bound, r.user_tag)), Some((2.0, "")));
        let fetch = index.resolve("alice", "app", QuotaKey::ConsumerByteRate);
        assert_eq!(fetch.map(|r| (r.bound, r.user_tag)), Some((1.0, "alice")));
        assert!(
            index
                .resolve("alice", "app", QuotaKey::RequestPercentage)
                .is_none()
        );
        assert!(QuotaIndex::of(&QuotaConfigs::default()).is_empty());
    }
}
