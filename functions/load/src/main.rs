//! The load Lambda: SQS batches of load tasks in, bronze rows out, with a partial
//! batch response. All logic lives in `bronze::load`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bronze::load::{DeadLetters, Loader};
use bronze::{
    aws,
    db::{Db, Migrations},
    limits::Limits,
    metrics::Metrics,
};
use lambda_runtime::{service_fn, tracing, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = aws::sdk_config().await;
    let loader = Loader {
        s3: aws::s3(&config),
        db: Db::from_env(Some(aws::secrets(&config)))
            .migrations(Migrations::from_env(Migrations::Require)?),
        limits: Limits::from_env()?,
        dead_letters: std::env::var("LOAD_DLQ_URL").ok().map(|url| DeadLetters {
            sqs: aws::sqs(&config),
            url,
        }),
        metrics: Metrics::from_env(),
        unnoted: Default::default(),
    };
    let loader = &loader;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // Each load gives up, rolled back and noted for retry, before Lambda's deadline
        // would kill it mid-write.
        let deadline = bronze::load::deadline_at(event.context.deadline);
        let response = loader.handle_until(event.payload, deadline);
        Ok::<SqsBatchResponse, Error>(Box::pin(response).await)
    }))
    .await
}
