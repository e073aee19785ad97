//! The local runner's HTTP side: `/metrics` (Prometheus text) and `/health` (JSON,
//! 200 or 503), on a plain TCP listener: two read-only endpoints need no web framework.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// Serves `/metrics` and `/health` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, health: Arc<Health>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (registry, health) = (Arc::clone(&registry), Arc::clone(&health));
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &registry, &health).await {
                tracing::debug!(error = %e, "Metrics request failed.");
            }
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    registry: &Registry,
    health: &Health,
) -> std::io::Result<()> {
    let mut request = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))??;
    let line = String::from_utf8_lossy(&request[..n]);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = match path {
        "/metrics" => (200, "text/plain; version=0.0.4", registry.render()),
        "/health" => {
            let (healthy, report) = check(health).await;
            let status = if healthy { 200 } else { 503 };
            (status, "application/json", report.to_string())
        }
        _ => (
            404,
            "text/plain",
            "not found: /metrics or /health\n".to_owned(),
        ),
    };
    let reason = match status {
        200 => "OK",
        503 => "Service Unavailable",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
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
