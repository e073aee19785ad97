//! The dispatch Lambda: S3 notifications (direct, SQS, SNS or EventBridge) in, ledger
//! rows and load tasks out. All logic lives in `bronze::dispatch`.

use bronze::admission::Admission;
use bronze::{
    aws,
    db::{Db, Migrations},
    dispatch::Dispatcher,
    metrics::Metrics,
};
use lambda_runtime::{service_fn, tracing, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = aws::sdk_config().await;
    let dispatcher = Dispatcher {
        s3: aws::s3(&config),
        sqs: aws::sqs(&config),
        load_queue_url: std::env::var("LOAD_QUEUE_URL").map_err(|_| "LOAD_QUEUE_URL is not set")?,
        db: Db::from_env(Some(aws::secrets(&config)))
            .migrations(Migrations::from_env(Migrations::Require)?),
        metrics: Metrics::from_env(),
        admission: Admission::from_env()?,
    };
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        dispatcher.handle(&event.payload).await.map_err(Error::from)
    }))
    .await
}
