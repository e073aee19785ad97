//! How a load ends when it does not end well, and what the caller does about it: a
//! bad file is recorded and never retried; a fault of the source or the database is
//! retried; bronze's own state being broken waits for a human.

use crate::format::ReadError;
use crate::registry::RegistryError;
use crate::typed::TypedError;

/// How a load ended, when it did not end well.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is bad: record the reason, never retry.
    #[error("{}", located(*.line, .reason))]
    Rejected {
        /// The line that condemned the file, when one did.
        line: Option<u64>,
        /// Why, as `bronze.rejects` and the ledger record it.
        reason: String,
    },
    /// The database failed: retry later.
    #[error("database: {}", crate::aws::describe(.0))]
    Database(#[source] tokio_postgres::Error),
    /// Reading the file's source failed (network, S3): retry later.
    #[error("reading the source: {0}")]
    Source(#[source] std::io::Error),
    /// Another fault that may pass (a worker holding the object, a file that changed
    /// between its two reads): retry later.
    #[error("{0}")]
    Transient(String),
    /// bronze's own state cannot be read (a stored schema version): no retry mends it,
    /// and the file is not at fault. The object waits for a human.
    #[error("{0}")]
    Broken(#[source] RegistryError),
}

impl LoadError {
    /// Whether a retry could succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LoadError::Database(_) | LoadError::Source(_) | LoadError::Transient(_)
        )
    }
}

/// `line N: reason`, or the reason alone.
fn located(line: Option<u64>, reason: &str) -> String {
    match line {
        Some(line) => format!("line {line}: {reason}"),
        None => reason.to_owned(),
    }
}

impl From<tokio_postgres::Error> for LoadError {
    fn from(e: tokio_postgres::Error) -> Self {
        LoadError::Database(e)
    }
}

impl From<TypedError> for LoadError {
    fn from(e: TypedError) -> Self {
        match e {
            TypedError::Postgres(e) => LoadError::Database(e),
            TypedError::Registry(e) => e.into(),
        }
    }
}

impl From<RegistryError> for LoadError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Postgres(e) => LoadError::Database(e),
            corrupt => LoadError::Broken(corrupt),
        }
    }
}

impl From<ReadError> for LoadError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Source(io) => LoadError::Source(io),
            ReadError::Malformed { line, reason } | ReadError::Record { line, reason, .. } => {
                LoadError::Rejected {
                    line: Some(line),
                    reason,
                }
            }
            ReadError::Unsupported(reason) => LoadError::Rejected { line: None, reason },
        }
    }
}
