//! DescribeClientQuotas (key 48, KIP-546): the stored client quotas whose entity a filter
//! matches, with Kafka's filter rules: each component names an entity type and matches an
//! exact name, the default, or any name of that type ("specified"); an entity must have
//! every type the filter names, and with `strict` no other. Needs DESCRIBE_CONFIGS on the
//! cluster. Runs on the shard that received the request, from the node's copy of the
//! metadata.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::quota::entity::{CLIENT_ID, EntityName, IP, QuotaEntity, QuotaError, QuotaValues, USER};
use crate::shard::Shard;

/// Versions served: every version the protocol has (v1 is flexible).
pub const VERSIONS: (i16, i16) = (0, 1);

/// Kafka's `MatchType` codes.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// What a component asks of one entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// This name (`Default` for MATCH_DEFAULT).
    Name(EntityName),
    /// Any name, the default included (MATCH_SPECIFIED).
    Any,
}

/// A validated filter: what it asks of each entity type it names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QuotaFilter {
    user: Option<Want>,
    client_id: Option<Want>,
    /// An IP component: no stored entity has one (Sluice stores no IP quotas).
    ip: bool,
    strict: bool,
}

fn invalid(message: impl Into<String>) -> QuotaError {
    QuotaError::InvalidRequest(message.into())
}

fn want_of(c: &ComponentData) -> Result<Want, QuotaError> {
    let name = c._match.as_ref().map(|m| m.as_str());
    match (c.match_type, name) {
        (MATCH_EXACT, Some(n)) => Ok(Want::Name(EntityName::Named(n.to_owned()))),
        (MATCH_EXACT, None) => Err(invalid(
            "Request specified MATCH_TYPE_EXACT, but set match string to null.",
        )),
        (MATCH_DEFAULT, None) => Ok(Want::Name(EntityName::Default)),
        (MATCH_SPECIFIED, None) => Ok(Want::Any),
        (MATCH_DEFAULT | MATCH_SPECIFIED, Some(_)) => Err(invalid(format!(
            "Request specified match type {}, but also specified a match string.",
            c.match_type
        ))),
        (other, _) => Err(invalid(format!("Unknown match type {other}"))),
    }
}

impl QuotaFilter {
    /// The filter of a request, checked as Kafka's `ClientQuotasImage.describe` does.
    ///
    /// # Errors
    /// INVALID_REQUEST for a duplicate type, a bad match or IP mixed with the others;
    /// UNSUPPORTED_VERSION for an unknown type.
    pub fn of(components: &[ComponentData], strict: bool) -> Result<Self, QuotaError> {
        let mut filter = Self {
            strict,
            ..Self::default()
        };
        for c in components {
            let entity_type = c.entity_type.as_str();
            let slot = match entity_type {
                "" => return Err(invalid("Invalid empty entity type.")),
                USER => &mut filter.user,
                CLIENT_ID => &mut filter.client_id,
                IP => {
                    if filter.ip {
                        return Err(invalid(
                            "Entity type ip cannot appear more than once in the filter.",
                        ));
                    }
                    want_of(c)?;
                    filter.ip = true;
                    continue;
                }
                other => {
                    return Err(QuotaError::UnsupportedEntityType(format!(
                        "Unsupported entity type {other}"
                    )));
                }
            };
            if slot.is_some() {
                return Err(invalid(format!(
                    "Entity type {entity_type} cannot appear more than once in the filter."
                )));
            }
            *slot = Some(want_of(c)?);
        }
        if filter.ip && (filter.user.is_some() || filter.client_id.is_some()) {
            return Err(invalid(
                "Invalid entity filter component combination. IP filter component should not \
                 be used with user or clientId filter component.",
            ));
        }
        Ok(filter)
    }

    /// Whether `entity` passes the filter.
    #[must_use]
    pub fn matches(&self, entity: &QuotaEntity) -> bool {
        if self.ip {
            return false;
        }
        let component = |want: &Option<Want>, have: &Option<EntityName>| match (want, have) {
            (None, _) => !self.strict || have.is_none(),
            (Some(_), None) => false,
            (Some(Want::Any), Some(_)) => true,
            (Some(Want::Name(w)), Some(h)) => w == h,
        };
        component(&self.user, &entity.user) && component(&self.client_id, &entity.client_id)
    }
}

fn entry(entity: &QuotaEntity, values: &QuotaValues) -> EntryData {
    let mut e = EntryData::default();
    e.entity = entity
        .components()
        .into_iter()
        .map(|(entity_type, name)| {
            let mut d = EntityData::default();
            d.entity_type = str_bytes(entity_type);
            d.entity_name = name.map(str_bytes);
            d
        })
        .collect();
    e.values = values
        .iter()
        .map(|(key, value)| {
            let mut v = ValueData::default();
            v.key = str_bytes(key.name());
            v.value = value.0;
            v
        })
        .collect();
    e
}

/// The registry's entry.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let mut response = DescribeClientQuotasResponse::default();
    if !enforce::cluster_allowed(shard, ctx, Operation::DescribeConfigs) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(str_bytes(format!(
            "{} may not DescribeConfigs the cluster",
            ctx.principal
        )));
        return response;
    }
    let filter = match QuotaFilter::of(&request.components, request.strict) {
        Ok(filter) => filter,
        Err(e) => {
            response.error_code = e.kafka_error().code();
            response.error_message = Some(str_bytes(e.to_string()));
            return response;
        }
    };
    let security = shard.cluster.security();
    response.entries = Some(
        security
            .quotas
            .0
            .iter()
            .filter(|(entity, _)| filter.matches(entity))
            .map(|(entity, values)| entry(entity, values))
            .collect(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn component(entity_type: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        let mut c = ComponentData::default();
        c.entity_type = str_bytes(entity_type);
        c.match_type = match_type;
        c._match = name.map(str_bytes);
        c
    }

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity {
            user: user.map(EntityName::from_wire),
            client_id: client.map(EntityName::from_wire),
        }
    }

    #[test]
    fn filters_match_as_kafkas_do() {
        let alice = entity(Some(Some("alice")), None);
        let alice_app = entity(Some(Some("alice")), Some(Some("app")));
        let default_user = entity(Some(None), None);
        let app = entity(None, Some(Some("app")));
        let all = [&alice, &alice_app, &default_user, &app];
        let matching = |components: &[ComponentData], strict: bool| -> Vec<&QuotaEntity> {
            let filter = QuotaFilter::of(components, strict).expect("valid");
            all.into_iter().filter(|e| filter.matches(e)).collect()
        };
        let exact_alice = [component(USER, MATCH_EXACT, Some("alice"))];
        assert_eq!(matching(&exact_alice, false), vec![&alice, &alice_app]);
        assert_eq!(matching(&exact_alice, true), vec![&alice]);
        let any_user = [component(USER, MATCH_SPECIFIED, None)];
        assert_eq!(matching(&any_user, true), vec![&alice, &default_user]);
        let default = [component(USER, MATCH_DEFAULT, None)];
        assert_eq!(matching(&default, false), vec![&default_user]);
        assert_eq!(matching(&[], false).len(), 4);
        assert!(matching(&[], true).is_empty());
        let both = [
            component(USER, MATCH_SPECIFIED, None),
            component(CLIENT_ID, MATCH_EXACT, Some("app")),
        ];
        assert_eq!(matching(&both, true), vec![&alice_app]);
    }

    #[test]
    fn bad_filters_get_kafkas_errors() {
        let refused = |components: &[ComponentData]| {
            QuotaFilter::of(components, false)
                .expect_err("refused")
                .kafka_error()
        };
        let twice = [
            component(USER, MATCH_DEFAULT, None),
            component(USER, MATCH_SPECIFIED, None),
        ];
        assert_eq!(refused(&twice), ResponseError::InvalidRequest);
        assert_eq!(
            refused(&[component(USER, MATCH_EXACT, None)]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            refused(&[component(USER, MATCH_DEFAULT, Some("a"))]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            refused(&[component(USER, 7, None)]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            refused(&[component("topic", MATCH_SPECIFIED, None)]),
            ResponseError::UnsupportedVersion
        );
        let mixed = [
            component(IP, MATCH_SPECIFIED, None),
            component(USER, MATCH_SPECIFIED, None),
        ];
        assert_eq!(refused(&mixed), ResponseError::InvalidRequest);
    }

    #[test]
    fn responses_round_trip_through_the_wire_format() {
        let values = [(
            crate::quota::entity::QuotaKey::ConsumerByteRate,
            crate::quota::entity::QuotaValue(1024.0),
        )]
        .into();
        for version in VERSIONS.0..=VERSIONS.1 {
            let mut response = DescribeClientQuotasResponse::default();
            response.throttle_time_ms = 12;
            response.entries = Some(vec![entry(&entity(Some(None), Some(Some("app"))), &values)]);
            let mut buf = BytesMut::new();
            response.encode(&mut buf, version).expect("encodes");
            let back =
                DescribeClientQuotasResponse::decode(&mut buf.freeze(), version).expect("decodes");
            assert_eq!(back, response, "v{version}");
            let e = &back.entries.as_ref().expect("entries")[0];
            assert_eq!(
                e.entity[0].entity_name, None,
                "the default user is a null name"
            );
        }
    }
}
