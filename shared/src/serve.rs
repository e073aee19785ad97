//! The local runner's HTTP side: `/metrics` (Prometheus text) and `/health` (JSON,
//! 200 or 503), an axum router like the records API's (`crate::api`).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;

use crate::db::Db;
use crate::metrics::Registry;
use crate::runner::Queues;

/// What `/health` looks at.
pub struct Health {
    /// The database the runner loads into (its own connection).
    pub db: Db,
    /// The queues the runner polls.
    pub sqs: aws_sdk_sqs::Client,
    /// Whose depths and reachability `/health` reports.
    pub queues: Queues,
}

/// What the two routes read.
#[derive(Clone)]
struct Watched {
    registry: Arc<Registry>,
    health: Arc<Health>,
}

/// `/metrics` and `/health`.
pub fn router(registry: Arc<Registry>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(healthz))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: /metrics or /health\n") })
        .with_state(Watched { registry, health })
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, health: Arc<Health>) {
    if let Err(e) = axum::serve(listener, router(registry, health)).await {
        tracing::warn!(error = %e, "Metrics endpoint stopped.");
    }
}

async fn metrics(State(watched): State<Watched>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        watched.registry.render(),
    )
}

async fn healthz(State(watched): State<Watched>) -> impl IntoResponse {
    let (healthy, report) = check(&watched.health).await;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        report.to_string(),
    )
}

/// Database reachable, queues reachable, and the backlog: healthy when both answer.
async fn check(health: &Health) -> (bool, serde_json::Value) {
    let database = tokio::time::timeout(Duration::from_secs(5), async {
        let client = health.db.client().await.map_err(|e| e.to_string())?;
        client
            .query_one(
                "SELECT count(*) FROM bronze.objects WHERE status IN ('pending', 'loading')",
                &[],
            )
            .await
            .map(|row| row.get::<_, i64>(0))
            .map_err(|e| crate::aws::describe(&e))
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()));
    let queues = health
        .sqs
        .get_queue_attributes()
        .queue_url(&health.queues.load.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| crate::aws::describe(&e));
    let healthy = database.is_ok() && queues.is_ok();
    let report = json!({
        "healthy": healthy,
        "database": database.as_ref().err(),
        "queues": queues.as_ref().err(),
        "backlog": database.as_ref().ok(),
    });
    (healthy, report)
}
