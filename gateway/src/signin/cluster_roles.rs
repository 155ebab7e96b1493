//! Roles from the cluster's RBAC: in cluster mode the gateway asks the API server, with a
//! SubjectAccessReview, whether the signed-in person may do on Switchboard's resources what the
//! admin request amounts to, so that Kubernetes RBAC is the one place access is granted:
//!
//! - every tenant's views: `list tenants.switchboard.dev` in the gateway's namespace;
//! - one tenant's views: `get tenants.switchboard.dev/<name>`; changing it: `update`; creating
//!   tenants: `create` (the console offers what these allow; the writes themselves are the API
//!   server's to allow, made as the person);
//! - the audit trail: `get audit.switchboard.dev` (a resource name for RBAC rules only).
//!
//! The person is named as [`super::kube_user::KubeNaming`] says. Answers are cached for a few seconds per person
//! and question.

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::Api;
use kube::api::PostParams;

use super::kube_user::Impersonator;
use super::members::{self, Members};
use super::roles::Scope;
use super::store::Person;
use crate::error::ApiError;

/// How long an answer is reused: RBAC changes reach a signed-in person within this.
const CACHE_FOR: Duration = Duration::from_secs(10);

pub struct ClusterRoles {
    client: kube::Client,
    namespace: String,
    people: Impersonator,
    answers: moka::sync::Cache<(String, String), bool>,
}

/// A question for the API server: a verb on a Switchboard resource, perhaps a named one.
struct Question<'a> {
    verb: &'a str,
    resource: &'a str,
    name: Option<&'a str>,
}

impl ClusterRoles {
    pub fn new(client: kube::Client, namespace: String, people: Impersonator) -> ClusterRoles {
        let answers = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(CACHE_FOR).build();
        ClusterRoles { client, namespace, people, answers }
    }

    /// Whether `person` may read what `scope` covers.
    pub async fn may_read(&self, person: &Person, scope: &Scope) -> Result<bool, ApiError> {
        let question = match scope {
            Scope::Global => Question { verb: "list", resource: "tenants", name: None },
            Scope::Tenant(tenant) => Question { verb: "get", resource: "tenants", name: Some(tenant) },
            Scope::Platform => Question { verb: "get", resource: "audit", name: None },
        };
        self.ask(person, &question).await
    }

    /// Whether `person` may change `tenant`.
    pub async fn may_update(&self, person: &Person, tenant: &str) -> Result<bool, ApiError> {
        self.ask(person, &Question { verb: "update", resource: "tenants", name: Some(tenant) }).await
    }

    /// Whether `person` may create Tenants.
    pub async fn may_create(&self, person: &Person) -> Result<bool, ApiError> {
        self.ask(person, &Question { verb: "create", resource: "tenants", name: None }).await
    }

    /// Who RBAC gives access to `tenant`, read as `person` (who must be allowed to read RBAC).
    pub async fn members(&self, person: &Person, tenant: &str) -> Result<Members, ApiError> {
        let client = self.people.client_as(person)?;
        Ok(members::from_rbac(client, &self.namespace, tenant).await)
    }

    async fn ask(&self, person: &Person, question: &Question<'_>) -> Result<bool, ApiError> {
        let key = (
            person.subject.clone(),
            format!("{} {} {}", question.verb, question.resource, question.name.unwrap_or("*")),
        );
        if let Some(allowed) = self.answers.get(&key) {
            return Ok(allowed);
        }
        let user = self.people.naming().user_of(person)?;
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.user),
                groups: Some(user.groups),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(switchboard_crds::GROUP.to_owned()),
                    resource: Some(question.resource.to_owned()),
                    verb: Some(question.verb.to_owned()),
                    namespace: Some(self.namespace.clone()),
                    name: question.name.map(str::to_owned),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api.create(&PostParams::default(), &review).await.map_err(|error| {
            tracing::warn!(%error, "cannot ask the API server about a person's access");
            ApiError::NotReady(format!("the API server cannot say what you may do: {error}"))
        })?;
        let allowed = answer.status.is_some_and(|status| status.allowed && !status.denied.unwrap_or(false));
        self.answers.insert(key, allowed);
        Ok(allowed)
    }
}
