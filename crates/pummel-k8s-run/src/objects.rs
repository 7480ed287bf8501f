//! The objects of a run as the API's types, and creating and deleting them.
//!
//! They are the documents `pummel k8s render` prints (converted through JSON, so `render` and
//! `run` create the same objects), led by the token Secret when the run creates it. Each is
//! labelled `pummel.dev/run=<id>`.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ByteString, NamespaceResourceScope};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, Resource};
use pummel_k8s::{COMPONENT_LABEL, RenderRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::RunError;

/// One object a run creates.
#[derive(Debug, Clone)]
pub(crate) enum Object {
    Secret(Box<Secret>),
    ConfigMap(Box<ConfigMap>),
    Service(Box<Service>),
    Job(Box<Job>),
}

impl Object {
    /// Its kind, as the API names it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Object::Secret(_) => "Secret",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Service(_) => "Service",
            Object::Job(_) => "Job",
        }
    }

    /// Its name.
    pub(crate) fn name(&self) -> String {
        let meta = match self {
            Object::Secret(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
        };
        meta.name.clone().unwrap_or_default()
    }

    /// Creates it in `namespace`.
    pub(crate) async fn create(&self, client: &Client, namespace: &str) -> Result<(), kube::Error> {
        match self {
            Object::Secret(o) => create(client, namespace, o.as_ref()).await,
            Object::ConfigMap(o) => create(client, namespace, o.as_ref()).await,
            Object::Service(o) => create(client, namespace, o.as_ref()).await,
            Object::Job(o) => create(client, namespace, o.as_ref()).await,
        }
    }
}

/// The objects of `request` (whose `run_id` is set), in the order to create them: the token
/// Secret (when `token` is given), the ConfigMap, the Service, the coordinator's Job, the
/// agents' Job.
pub(crate) fn build(request: &RenderRequest, token: Option<&str>) -> Result<Vec<Object>, RunError> {
    let mut objects = Vec::new();
    for document in pummel_k8s::documents(request)? {
        let json = document.json()?;
        let bad = |e: serde_json::Error| RunError::Internal(format!("the rendered {} is not one: {e}", document.kind));
        objects.push(match document.kind {
            "ConfigMap" => Object::ConfigMap(serde_json::from_value(json).map_err(bad)?),
            "Service" => Object::Service(serde_json::from_value(json).map_err(bad)?),
            "Job" => Object::Job(serde_json::from_value(json).map_err(bad)?),
            other => return Err(RunError::Internal(format!("an object of kind {other} was rendered"))),
        });
    }
    if let Some(token) = token {
        // The Secret carries the labels of the ConfigMap, as the token's component.
        let mut labels = match objects.first() {
            Some(Object::ConfigMap(config)) => config.metadata.labels.clone().unwrap_or_default(),
            _ => BTreeMap::new(),
        };
        labels.insert(COMPONENT_LABEL.to_string(), "token".to_string());
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(request.token_secret.clone()),
                namespace: Some(request.namespace.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([("token".to_string(), ByteString(token.as_bytes().to_vec()))])),
            ..Secret::default()
        };
        objects.insert(0, Object::Secret(Box::new(secret)));
    }
    Ok(objects)
}

async fn create<K>(client: &Client, namespace: &str, object: &K) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    Api::<K>::namespaced(client.clone(), namespace).create(&PostParams::default(), object).await.map(|_| ())
}

/// Deletes the object of `kind` named `name`, its pods with it (propagation `Background`); an
/// object already gone is not an error.
pub(crate) async fn delete(client: &Client, namespace: &str, kind: &str, name: &str) -> Result<(), kube::Error> {
    let result = match kind {
        "Secret" => delete_one::<Secret>(client, namespace, name).await,
        "ConfigMap" => delete_one::<ConfigMap>(client, namespace, name).await,
        "Service" => delete_one::<Service>(client, namespace, name).await,
        _ => delete_one::<Job>(client, namespace, name).await,
    };
    match result {
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
        other => other,
    }
}

async fn delete_one<K>(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    Api::<K>::namespaced(client.clone(), namespace).delete(name, &DeleteParams::background()).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pummel_k8s::{PlanFiles, RUN_LABEL};

    fn request() -> RenderRequest {
        let plan = PlanFiles::new("p.toml", b"[target]\nbase_url = \"http://x\"\n".to_vec());
        RenderRequest {
            namespace: "ns".into(),
            token_secret: "pummel-token".into(),
            run_id: Some("abc".into()),
            ..RenderRequest::new(plan, 2, "img:1")
        }
    }

    #[test]
    fn the_rendered_documents_become_the_apis_types_after_the_secret() {
        let objects = build(&request(), Some("t0k3n")).unwrap();
        let names: Vec<(&str, String)> = objects.iter().map(|o| (o.kind(), o.name())).collect();
        assert_eq!(
            names,
            [
                ("Secret", "pummel-token".to_string()),
                ("ConfigMap", "pummel-plan".into()),
                ("Service", "pummel-coordinator".into()),
                ("Job", "pummel-coordinator".into()),
                ("Job", "pummel-agents".into()),
            ]
        );
        let Object::Secret(secret) = &objects[0] else { panic!("a Secret first") };
        assert_eq!(secret.data.as_ref().unwrap()["token"].0, b"t0k3n");
        let labels = secret.metadata.labels.as_ref().unwrap();
        assert_eq!((labels[RUN_LABEL].as_str(), labels[COMPONENT_LABEL].as_str()), ("abc", "token"));
        let Object::Job(agents) = &objects[4] else { panic!("the agents' Job last") };
        let spec = agents.spec.as_ref().unwrap();
        assert_eq!(
            (spec.completions, spec.parallelism, spec.completion_mode.as_deref()),
            (Some(2), Some(2), Some("Indexed"))
        );
        // Without a token to create, the Secret is the user's.
        assert_eq!(build(&request(), None).unwrap().len(), 4);
    }
}
