//! Dead-lettered messages back to their queue, after the fault that sent them there
//! is mended (a database outage longer than the retries, a bug fixed).
//!
//! Where the endpoint has it (AWS), SQS's own `StartMessageMoveTask` moves them, in
//! the background. Elsewhere (moto), or when only some are to move, they are received,
//! sent again to the source queue and then deleted: a crash in between sends one twice,
//! which the ledger makes harmless, and never loses one.

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::aws::describe;
use crate::runner::Queue;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
#[error("replaying {from} to {to}: {reason}")]
pub struct ReplayError {
    from: String,
    to: String,
    reason: String,
}

/// How a replay went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// SQS moves them in the background: this task, of about this many messages.
    MoveTask {
        /// `aws sqs list-message-move-tasks` follows it.
        handle: String,
    },
    /// Moved here, one by one: this many.
    Moved(u64),
}

/// Moves all of `dead`'s messages back to `source`: by SQS's own move task where the
/// endpoint has one, else one by one ([`replay`]).
pub async fn replay_all(
    sqs: &aws_sdk_sqs::Client,
    dead: &Queue,
    source: &Queue,
) -> Result<Replayed, ReplayError> {
    let task = sqs
        .start_message_move_task()
        .source_arn(&dead.arn)
        .destination_arn(&source.arn)
        .send()
        .await;
    match task {
        Ok(out) => Ok(Replayed::MoveTask {
            handle: out.task_handle().unwrap_or_default().to_owned(),
        }),
        Err(e) => {
            tracing::debug!(error = %describe(&e), "No message move task here; moving one by one.");
            replay(sqs, dead, source, None).await.map(Replayed::Moved)
        }
    }
}

/// Moves up to `max` messages (all, with `None`) from `dead` to `source`, one by one;
/// returns how many moved.
pub async fn replay(
    sqs: &aws_sdk_sqs::Client,
    dead: &Queue,
    source: &Queue,
    max: Option<u64>,
) -> Result<u64, ReplayError> {
    let fail = |reason: String| ReplayError {
        from: dead.url.clone(),
        to: source.url.clone(),
        reason,
    };
    let mut moved = 0u64;
    loop {
        let room = max.map_or(10, |max| max.saturating_sub(moved).min(10));
        if room == 0 {
            return Ok(moved);
        }
        let received = sqs
            .receive_message()
            .queue_url(&dead.url)
            .max_number_of_messages(i32::try_from(room).unwrap_or(10))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| fail(describe(&e)))?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(moved);
        }
        for message in messages {
            sqs.send_message()
                .queue_url(&source.url)
                .message_body(message.body().unwrap_or_default())
                .send()
                .await
                .map_err(|e| fail(describe(&e)))?;
            sqs.delete_message()
                .queue_url(&dead.url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| fail(describe(&e)))?;
            moved += 1;
        }
    }
}
