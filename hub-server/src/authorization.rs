//! Who may connect to a hub and call its methods: an [`Authorization`] (from `#[authorize]`, or
//! [`HubMethods::authorize`](crate::HubMethods::authorize)) evaluated against the connection's
//! [`Principal`], with the named [`Policy`]s the server was given.

use std::collections::HashMap;
use std::sync::Arc;

use hub_core::hub::{Authorization, BoxFuture, Requirement};

use crate::auth::Principal;
use crate::request::RequestInfo;

/// The claim that holds a principal's roles (several may be listed, separated by commas or
/// spaces).
pub const ROLE_CLAIM: &str = "role";

/// A named authorization rule (`#[authorize(policy = "name")]`), given to the server with
/// [`HubServerBuilder::policy`](crate::HubServerBuilder::policy). Any async function or closure
/// `Fn(&Principal, &RequestInfo) -> impl Future<Output = bool>` is one.
pub trait Policy: Send + Sync + 'static {
    /// Whether `principal`, connected with `request`, meets the policy.
    fn allows(&self, principal: &Principal, request: &RequestInfo) -> BoxFuture<bool>;
}

impl<F, Fut> Policy for F
where
    F: Fn(&Principal, &RequestInfo) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    fn allows(&self, principal: &Principal, request: &RequestInfo) -> BoxFuture<bool> {
        Box::pin(self(principal, request))
    }
}

/// The policies a server knows, by name.
#[derive(Clone, Default)]
pub(crate) struct Policies(Arc<HashMap<String, Arc<dyn Policy>>>);

/// What an authorization decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Every requirement holds.
    Allowed,
    /// An anonymous caller where a user is required (HTTP 401).
    Unauthenticated,
    /// A user who does not meet a requirement (HTTP 403).
    Forbidden,
}

impl Policies {
    pub(crate) fn new(policies: HashMap<String, Arc<dyn Policy>>) -> Self {
        Policies(Arc::new(policies))
    }

    /// Whether a policy of this name is known.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Whether `principal` fails a requirement that needs no policy (decided at once, without
    /// waiting); policies are left for [`decide`](Self::decide).
    pub(crate) fn refuses_at_once(authorization: &Authorization, principal: &Principal) -> bool {
        authorization
            .requirements
            .iter()
            .any(|requirement| match requirement {
                Requirement::Policy(_) => false,
                other => !holds_without_policy(other, principal),
            })
    }

    /// Evaluates `authorization` for `principal` (requirements in order; policies run only when
    /// the others hold).
    pub(crate) async fn decide(
        &self,
        authorization: &Authorization,
        principal: &Principal,
        request: &RequestInfo,
    ) -> Decision {
        for requirement in &authorization.requirements {
            let holds = match requirement {
                Requirement::Policy(name) => match self.0.get(name) {
                    Some(policy) => policy.allows(principal, request).await,
                    None => {
                        // Checked when the server is built; reachable only through a hub
                        // whose requirements changed after that.
                        tracing::error!(policy = %name, "an unknown authorization policy refuses everyone");
                        false
                    }
                },
                other => holds_without_policy(other, principal),
            };
            if !holds {
                return if principal.user_id.is_none() {
                    Decision::Unauthenticated
                } else {
                    Decision::Forbidden
                };
            }
        }
        Decision::Allowed
    }
}

/// Whether a requirement other than a policy holds for `principal`.
fn holds_without_policy(requirement: &Requirement, principal: &Principal) -> bool {
    match requirement {
        Requirement::Authenticated => principal.user_id.is_some(),
        Requirement::AnyRole(roles) => roles.iter().any(|role| principal.has_role(role)),
        Requirement::Claim { name, value } => match value {
            None => principal.claims.contains_key(name),
            Some(value) => claim_values(principal, name).any(|v| v == value),
        },
        // Policies (and requirements of a later version) are not decided here.
        _ => false,
    }
}

fn claim_values<'a>(principal: &'a Principal, name: &str) -> impl Iterator<Item = &'a str> {
    principal
        .claims
        .get(name)
        .into_iter()
        .flat_map(|values| values.split([',', ' ']))
        .filter(|value| !value.is_empty())
}

impl Principal {
    /// Whether the principal has `role` (in its [`ROLE_CLAIM`] claim).
    pub fn has_role(&self, role: &str) -> bool {
        claim_values(self, ROLE_CLAIM).any(|value| value == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RequestInfo {
        RequestInfo::from_parts(&http::Request::new(()).into_parts().0)
    }

    fn decide(
        policies: &Policies,
        authorization: &Authorization,
        principal: &Principal,
    ) -> Decision {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|runtime| runtime.block_on(policies.decide(authorization, principal, &request())))
            .unwrap_or(Decision::Forbidden)
    }

    #[test]
    fn requirements_decide_401_403_or_allowed() {
        let mut named: HashMap<String, Arc<dyn Policy>> = HashMap::new();
        named.insert(
            "even".into(),
            Arc::new(|principal: &Principal, _: &RequestInfo| {
                let even = principal
                    .user_id
                    .as_ref()
                    .is_some_and(|id| id.len() % 2 == 0);
                async move { even }
            }),
        );
        let policies = Policies::new(named);
        let anonymous = Principal::anonymous();
        let mut admin = Principal::user("ada");
        admin.claims.insert("role".into(), "ops, admin".into());
        admin.claims.insert("scope".into(), "read write".into());
        let bob = Principal::user("bobby");

        let open = Authorization::anyone();
        assert_eq!(decide(&policies, &open, &anonymous), Decision::Allowed);
        let users = Authorization::all([Requirement::Authenticated]);
        assert_eq!(
            decide(&policies, &users, &anonymous),
            Decision::Unauthenticated
        );
        assert_eq!(decide(&policies, &users, &bob), Decision::Allowed);
        let admins = users.clone().and(Requirement::role(["admin"]));
        assert_eq!(decide(&policies, &admins, &admin), Decision::Allowed);
        assert_eq!(decide(&policies, &admins, &bob), Decision::Forbidden);
        let writers = Authorization::all([Requirement::claim_value("scope", "write")]);
        assert_eq!(decide(&policies, &writers, &admin), Decision::Allowed);
        assert_eq!(
            decide(&policies, &writers, &anonymous),
            Decision::Unauthenticated
        );
        let even = Authorization::all([Requirement::policy("even")]);
        assert_eq!(decide(&policies, &even, &admin), Decision::Forbidden);
        assert_eq!(
            decide(&policies, &even, &Principal::user("ab")),
            Decision::Allowed
        );
        let unknown = Authorization::all([Requirement::policy("nope")]);
        assert_eq!(decide(&policies, &unknown, &admin), Decision::Forbidden);
    }
}
