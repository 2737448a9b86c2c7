//! DescribeUserScramCredentials (key 50, KIP-554): the mechanisms and iteration counts of the
//! SCRAM credentials made with AlterUserScramCredentials (never salts or keys). No users named:
//! every user with a credential. An unknown user gets RESOURCE_NOT_FOUND, a user named twice
//! DUPLICATE_RESOURCE, as Kafka answers. Needs DESCRIBE on the cluster. Runs on the shard that
//! received the request, from the node's copy of the metadata.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: every version the protocol has.
pub const VERSIONS: (i16, i16) = (0, 0);

/// The registry's entry.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let mut response = DescribeUserScramCredentialsResponse::default();
    if !enforce::cluster_allowed(shard, ctx, Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(str_bytes("Cluster authorization failed."));
        return response;
    }
    let security = shard.cluster.security();
    // (user, named more than once), in first-appearance order.
    let mut users: Vec<(String, bool)> = Vec::new();
    match request.users.as_deref() {
        None | Some([]) => users.extend(security.scram.keys().map(|u| (u.clone(), false))),
        Some(named) => {
            for u in named {
                let name = u.name.to_string();
                match users.iter_mut().find(|(n, _)| *n == name) {
                    Some(seen) => seen.1 = true,
                    None => users.push((name, false)),
                }
            }
        }
    }
    response.results = users
        .into_iter()
        .map(|(user, duplicate)| {
            let mut r = DescribeUserScramCredentialsResult::default();
            r.user = str_bytes(user.clone());
            let creds = security.scram.get(&user);
            let (code, message) = match (duplicate, creds) {
                (true, _) => (
                    ResponseError::DuplicateResource,
                    "Cannot describe SCRAM credentials for the same user twice in a single request: ",
                ),
                (false, None) => (
                    ResponseError::ResourceNotFound,
                    "Attempt to describe a user credential that does not exist: ",
                ),
                (false, Some(creds)) => {
                    r.credential_infos = creds
                        .iter()
                        .map(|(mechanism, c)| {
                            let mut info = CredentialInfo::default();
                            info.mechanism = mechanism.code();
                            info.iterations = i32::try_from(c.iterations).unwrap_or(i32::MAX);
                            info
                        })
                        .collect();
                    return r;
                }
            };
            r.error_code = code.code();
            r.error_message = Some(str_bytes(format!("{message}{user}")));
            r
        })
        .collect();
    response
}
