//! The reconcile Lambda: on a schedule, loads the recent objects of the landing bucket
//! that no notification announced. All logic lives in `bronze::reconcile`.

use std::time::Duration;

use bronze::admission::Admission;
use bronze::dispatch::Dispatcher;
use bronze::metrics::Metrics;
use bronze::reconcile::Reconciler;
use bronze::{
    aws,
    db::{Db, Migrations},
};
use lambda_runtime::{service_fn, tracing, Error, LambdaEvent};
use serde_json::Value;

/// A whole number from the environment, or its default.
fn number(name: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("{name}={text:?}: not a whole number").into()),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = aws::sdk_config().await;
    let reconciler = Reconciler {
        dispatcher: Dispatcher {
            s3: aws::s3(&config),
            sqs: aws::sqs(&config),
            load_queue_url: std::env::var("LOAD_QUEUE_URL")
                .map_err(|_| "LOAD_QUEUE_URL is not set")?,
            db: Db::from_env(Some(aws::secrets(&config)))
                .migrations(Migrations::from_env(Migrations::Require)?),
            metrics: Metrics::from_env(),
            admission: Admission::from_env()?,
        },
        bucket: std::env::var("LANDING_BUCKET").map_err(|_| "LANDING_BUCKET is not set")?,
        window: Duration::from_secs(number("RECONCILE_WINDOW_HOURS", 48)? * 3600),
        max_keys: number("RECONCILE_MAX_KEYS", 10_000)?,
    };
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let counts = reconciler.run().await?;
        tracing::info!(
            scanned = counts.scanned,
            listed = counts.listed,
            known = counts.known,
            queued = counts.queued,
            next_key = counts.next_key.as_deref(),
            "Reconcile run done."
        );
        Ok::<_, Error>(serde_json::to_value(&counts)?)
    }))
    .await
}
