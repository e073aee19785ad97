//! Savepoints: try a step inside the caller's transaction, and undo only that step.

use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

/// A savepoint of the caller's transaction, released or rolled back to by name.
pub struct Savepoint<'a> {
    tx: &'a Transaction<'a>,
    name: &'static str,
}

impl<'a> Savepoint<'a> {
    /// Marks the transaction here.
    pub async fn begin(
        tx: &'a Transaction<'a>,
        name: &'static str,
    ) -> Result<Savepoint<'a>, tokio_postgres::Error> {
        tx.batch_execute(&format!("SAVEPOINT {name}")).await?;
        Ok(Self { tx, name })
    }

    /// Keeps what was done since the mark.
    pub async fn release(self) -> Result<(), tokio_postgres::Error> {
        self.tx
            .batch_execute(&format!("RELEASE SAVEPOINT {}", self.name))
            .await
    }

    /// Undoes what was done since the mark; the transaction goes on.
    pub async fn undo(self) -> Result<(), tokio_postgres::Error> {
        self.tx
            .batch_execute(&format!(
                "ROLLBACK TO SAVEPOINT {0}; RELEASE SAVEPOINT {0}",
                self.name
            ))
            .await
    }

    /// Runs `sql` inside a savepoint named `name`: an error whose SQLSTATE is one of
    /// `expected` (any, when empty) is undone and returned as `Ok(Err(e))`; others
    /// fail the transaction.
    pub async fn attempt(
        tx: &'a Transaction<'a>,
        name: &'static str,
        sql: &str,
        expected: &[SqlState],
    ) -> Result<Result<(), tokio_postgres::Error>, tokio_postgres::Error> {
        let savepoint = Self::begin(tx, name).await?;
        match tx.batch_execute(sql).await {
            Ok(()) => {
                savepoint.release().await?;
                Ok(Ok(()))
            }
            Err(e) if expected.is_empty() || e.code().is_some_and(|c| expected.contains(c)) => {
                savepoint.undo().await?;
                Ok(Err(e))
            }
            Err(e) => Err(e),
        }
    }
}
