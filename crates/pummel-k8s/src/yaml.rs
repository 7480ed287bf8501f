//! The documents as text: a header of comments (what to create first, how to follow the run),
//! then each object after its comments, separated by `---`.

use crate::error::RenderError;
use crate::manifests::Document;
use crate::request::RenderRequest;

/// The whole output of `pummel k8s render`.
pub(crate) fn to_text(request: &RenderRequest, documents: &[Document]) -> Result<String, RenderError> {
    let mut out = String::new();
    let header = [
        format!(
            "pummel: plan {:?} run by {} agent(s) in namespace {:?}, image {}",
            request.plan.name, request.agents, request.namespace, request.image
        ),
        format!(
            "First create the token Secret (coordinator and agents trust only peers that know it):\n\
             kubectl create secret generic {} -n {} --from-literal=token=\"$(head -c 32 /dev/urandom | base64)\"",
            request.token_secret, request.namespace
        ),
        "Then: kubectl apply -f <this file>; to run again, delete the Jobs first (their pods are kept for logs)."
            .into(),
    ];
    push_comments(&mut out, header.iter().flat_map(|h| h.lines()));
    for document in documents {
        out.push_str("---\n");
        push_comments(&mut out, document.comments.iter().map(String::as_str));
        out.push_str(&document.yaml()?);
    }
    Ok(out)
}

fn push_comments<'a>(out: &mut String, lines: impl Iterator<Item = &'a str>) {
    for line in lines {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}
