//! HTTP request rates and latencies, labelled by route template (never by raw path: ids in
//! paths would make unbounded label values).

use std::sync::Arc;
use std::time::Instant;

use salvo::prelude::*;

use super::Metrics;

/// The route template of a path.
pub fn route(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["health"] => "/health",
        ["ready"] => "/ready",
        ["metrics"] => "/metrics",
        ["webhook", "fal", "status"] => "/webhook/fal/status",
        ["webhook", "fal", "portrait"] => "/webhook/fal/portrait",
        ["admin", "runs"] => "/admin/runs",
        ["admin", "runs", _] => "/admin/runs/{id}",
        ["admin", "runs", _, "retry"] => "/admin/runs/{id}/retry",
        ["admin", "runs", _, "cancel"] => "/admin/runs/{id}/cancel",
        ["admin", "queues"] => "/admin/queues",
        ["admin", "queues", _, "requeue-dead"] => "/admin/queues/{queue}/requeue-dead",
        ["admin", "users", _, "credits"] => "/admin/users/{id}/credits",
        ["blobs", ..] => "/blobs/{key}",
        _ => "other",
    }
}

/// A salvo hoop that counts and times every request into the metrics it holds.
pub struct Observe(pub Arc<Metrics>);

#[async_trait]
impl Handler for Observe {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let started = Instant::now();
        let route = route(req.uri().path());
        let method = req.method().as_str().to_string();
        ctrl.call_next(req, depot, res).await;
        let status = res.status_code.map(|s| s.as_u16()).unwrap_or(200);
        self.0
            .http_request(route, &method, status, started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn ids_never_become_labels() {
        assert_eq!(
            route("/admin/runs/0193-abc/retry"),
            "/admin/runs/{id}/retry"
        );
        assert_eq!(route("/blobs/avatars/x/lora.safetensors"), "/blobs/{key}");
        assert_eq!(route("/webhook/fal/portrait"), "/webhook/fal/portrait");
        assert_eq!(route("/whatever/else"), "other");
    }
}
