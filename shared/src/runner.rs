//! The local runner: plays Lambda's part against any S3/SQS endpoint (moto,
//! LocalStack, AWS). It provisions the bucket, its notification and the queues, polls
//! them, hands the same batch shapes to the same handlers, deletes what succeeded and
//! leaves failures to SQS's redelivery.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Event, NotificationConfiguration,
    QueueConfiguration,
};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};
use tracing::info;

use crate::aws::describe;
use crate::dispatch::Dispatcher;
use crate::load::Loader;

/// Names and timings of the local set-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The landing bucket.
    pub bucket: String,
    /// Prefix of the queue names: `<prefix>-landing`, `<prefix>-load` and their DLQs.
    pub queue_prefix: String,
    /// Seconds a received message stays invisible before SQS redelivers it.
    pub visibility_timeout: u32,
    /// Receives before a message moves to its dead-letter queue.
    pub max_receive_count: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bucket: "bronze-landing".into(),
            queue_prefix: "bronze".into(),
            visibility_timeout: 30,
            max_receive_count: 5,
        }
    }
}

/// A queue's URL and ARN.
#[derive(Debug, Clone)]
pub struct Queue {
    /// What the SDK calls it by.
    pub url: String,
    /// What policies and redrive name it by.
    pub arn: String,
}

/// The provisioned queues.
#[derive(Debug, Clone)]
pub struct Queues {
    /// S3 notifications, for dispatch.
    pub landing: Queue,
    /// Notifications dispatch could not handle.
    pub landing_dlq: Queue,
    /// Load tasks, for load.
    pub load: Queue,
    /// Load tasks load could not handle, and unreadable ones.
    pub load_dlq: Queue,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
/// Why the local set-up or polling failed, with the AWS error's text.
pub struct RunnerError(String);

fn fail(what: &str, e: &(dyn std::error::Error + 'static)) -> RunnerError {
    RunnerError(format!("{what}: {}", describe(e)))
}

/// Creates what is missing: bucket, queues with redrive, bucket → landing notification.
pub async fn provision(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    settings: &Settings,
) -> Result<Queues, RunnerError> {
    create_bucket(s3, &settings.bucket).await?;
    let prefix = &settings.queue_prefix;
    let landing_dlq = create_queue(sqs, &format!("{prefix}-landing-dlq"), settings, None).await?;
    let load_dlq = create_queue(sqs, &format!("{prefix}-load-dlq"), settings, None).await?;
    let landing = create_queue(
        sqs,
        &format!("{prefix}-landing"),
        settings,
        Some(&landing_dlq),
    )
    .await?;
    let load = create_queue(sqs, &format!("{prefix}-load"), settings, Some(&load_dlq)).await?;
    let notification = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(&landing.arn)
                .events(Event::S3ObjectCreated)
                .build()
                .map_err(|e| fail("notification", &e))?,
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(&settings.bucket)
        .notification_configuration(notification)
        .send()
        .await
        .map_err(|e| fail("configuring the bucket notification", &e))?;
    Ok(Queues {
        landing,
        landing_dlq,
        load,
        load_dlq,
    })
}

/// The queues `provision` made under `prefix`, found without creating anything: for
/// the operator commands, which change no infrastructure.
pub async fn find_queues(sqs: &aws_sdk_sqs::Client, prefix: &str) -> Result<Queues, RunnerError> {
    Ok(Queues {
        landing: find_queue(sqs, &format!("{prefix}-landing")).await?,
        landing_dlq: find_queue(sqs, &format!("{prefix}-landing-dlq")).await?,
        load: find_queue(sqs, &format!("{prefix}-load")).await?,
        load_dlq: find_queue(sqs, &format!("{prefix}-load-dlq")).await?,
    })
}

async fn find_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<Queue, RunnerError> {
    let found = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| fail(&format!("finding queue {name}"), &e))?;
    let url = found.queue_url().unwrap_or_default().to_owned();
    queue_arn(sqs, name, url).await
}

async fn queue_arn(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    url: String,
) -> Result<Queue, RunnerError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail(&format!("reading queue {name}"), &e))?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    Ok(Queue { url, arn })
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), RunnerError> {
    let region = s3.config().region().map(|r| r.to_string());
    let mut request = s3.create_bucket().bucket(bucket);
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(fail(&format!("creating bucket {bucket}"), &e)),
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    settings: &Settings,
    dead_letter: Option<&Queue>,
) -> Result<Queue, RunnerError> {
    let mut request = sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        settings.visibility_timeout.to_string(),
    );
    if let Some(dlq) = dead_letter {
        let redrive =
            json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": settings.max_receive_count});
        request = request.attributes(QueueAttributeName::RedrivePolicy, redrive.to_string());
    }
    let created = request
        .send()
        .await
        .map_err(|e| fail(&format!("creating queue {name}"), &e))?;
    let url = created.queue_url().unwrap_or_default().to_owned();
    queue_arn(sqs, name, url).await
}

/// Which handler a queue feeds.
#[derive(Clone, Copy)]
pub enum Stage<'a> {
    /// The landing queue's handler.
    Dispatch(&'a Dispatcher),
    /// The load queue's handler.
    Load(&'a Loader),
}

impl Stage<'_> {
    async fn invoke(&self, event: Value) -> SqsBatchResponse {
        match self {
            Stage::Dispatch(dispatcher) => match dispatcher.handle(&event).await {
                Ok(response) => response,
                Err(e) => all_failed(&event, &e.to_string()),
            },
            Stage::Load(loader) => match serde_json::from_value::<SqsEvent>(event.clone()) {
                Ok(batch) => loader.handle(batch).await,
                Err(e) => all_failed(&event, &e.to_string()),
            },
        }
    }
}

fn all_failed(event: &Value, reason: &str) -> SqsBatchResponse {
    tracing::warn!(reason, "Handler failed the whole batch.");
    let mut response = SqsBatchResponse::default();
    for record in event["Records"].as_array().into_iter().flatten() {
        let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
        failure.item_identifier = record["messageId"].as_str().unwrap_or_default().to_owned();
        response.batch_item_failures.push(failure);
    }
    response
}

/// Receives one batch from `queue`, invokes `stage` with it as Lambda would, and
/// deletes the messages that did not fail. Returns how many messages were received.
pub async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    queue: &Queue,
    stage: Stage<'_>,
    wait_seconds: i32,
) -> Result<usize, RunnerError> {
    let received = sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| fail("receiving messages", &e))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let region = sqs
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let event = json!({"Records": messages.iter().map(|m| sqs_record(m, &queue.arn, &region)).collect::<Vec<_>>()});
    let response = stage.invoke(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for message in messages {
        if failed.contains(&message.message_id().unwrap_or_default()) {
            continue;
        }
        sqs.delete_message()
            .queue_url(&queue.url)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(|e| fail("deleting a handled message", &e))?;
    }
    Ok(messages.len())
}

/// An SQS message in the shape Lambda's event source mapping delivers.
fn sqs_record(message: &Message, arn: &str, region: &str) -> Value {
    let attributes: HashMap<&str, &str> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "md5OfBody": message.md5_of_body(),
        "attributes": attributes,
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    })
}

/// Polls both queues until stopped, or until nothing has arrived for `idle_exit`.
pub async fn run(
    sqs: &aws_sdk_sqs::Client,
    queues: &Queues,
    dispatcher: &Dispatcher,
    loader: &Loader,
    idle_exit: Option<Duration>,
) -> Result<(), RunnerError> {
    let mut last_busy = Instant::now();
    loop {
        let dispatched = poll_once(sqs, &queues.landing, Stage::Dispatch(dispatcher), 1).await?;
        let loaded = poll_once(sqs, &queues.load, Stage::Load(loader), 1).await?;
        if dispatched + loaded > 0 {
            last_busy = Instant::now();
        } else if idle_exit.is_some_and(|idle| last_busy.elapsed() >= idle) {
            info!("Queues idle; runner stopping.");
            return Ok(());
        }
    }
}
