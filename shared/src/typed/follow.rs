//! What keeps the typed relation in step with the dataset: each load ([`follow`], in
//! the load's transaction), a change of the dataset's settings ([`apply`]) and an
//! operator's rebuild ([`rebuild`]).

use std::collections::HashSet;

use tokio_postgres::{Client, Transaction};

use super::index::{self, Build};
use super::stats;
use super::table::{self, Evolved, Kind};
use super::{create_view, estimated_rows, Storage, TypedError};
use crate::keys::Destination;
use crate::registry::{self, Decision};
use crate::schema::Schema;
use crate::store::{dataset_settings, lock_dataset, DatasetSettings};

/// What a load did that the typed relation follows.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    /// What the file did to the schema.
    pub decision: &'a Decision,
    /// The load created the bronze table (nothing is listed in `bronze_touched`).
    pub new_table: bool,
    /// The load wrote rows: their keys are in `pg_temp.bronze_touched`.
    pub wrote: bool,
    /// Rows of a typed table a breaking change may rebuild inside the load; past
    /// them the old table stays until `bronze typed rebuild`.
    pub rebuild_rows: u64,
}

/// Keeps the typed relation in step with what a load wrote, in the load's
/// transaction. Jsonb: the view is (re)created on a new version. Structured: the
/// table is built when missing, altered on a version that adds or widens columns,
/// rebuilt on a breaking one (or left as it was, with a note, when it is large), and
/// its touched keys upserted or removed. Returns a note for the operator.
pub async fn follow(
    tx: &Transaction<'_>,
    dest: &Destination,
    settings: &DatasetSettings,
    written: Written<'_>,
) -> Result<Option<String>, TypedError> {
    let Some((number, schema)) = written.decision.version() else {
        return Ok(None);
    };
    let is_new = matches!(written.decision, Decision::New { .. });
    if settings.storage == Storage::Jsonb {
        if !is_new {
            return Ok(None);
        }
        let note = create_view(tx, dest, schema).await?;
        index::ensure(tx, dest, settings, schema, Build::Here).await?;
        stats::ensure(tx, dest, schema, Storage::Jsonb).await?;
        return Ok(note);
    }
    let shape = match (table::kind(tx, dest).await?, typed_version(tx, dest).await?) {
        (Kind::Table, Some(shape)) if !written.new_table => shape,
        _ => return build(tx, dest, settings, number, schema).await,
    };
    let mut follows = None;
    if shape != number {
        let history = registry::history(tx, dest).await?;
        let Some(old) = history.iter().find(|v| v.number == shape) else {
            return build(tx, dest, settings, number, schema).await;
        };
        let earlier: HashSet<&str> = history
            .iter()
            .filter(|v| v.number < number)
            .flat_map(|v| v.schema.fields.iter().map(|f| f.name.as_str()))
            .collect();
        match table::evolve(tx, dest, &old.schema, schema, &earlier).await? {
            Evolved::Altered => {
                record(tx, dest, number).await?;
                index::ensure(tx, dest, settings, schema, Build::Here).await?;
            }
            Evolved::Breaking => {
                let rows = estimated_rows(tx, &table::name(dest)).await?;
                // An estimate: comparing it as a float loses nothing that matters.
                if rows <= written.rebuild_rows as f64 {
                    return build(tx, dest, settings, number, schema).await;
                }
                let note = format!(
                    "schema version {number} of {}.{} breaks the typed table's columns (version \
                     {shape}); about {rows} rows are too many to rebuild inside a load: the table \
                     keeps version {shape}'s columns, and its rows are kept, until `bronze typed \
                     rebuild {} {}`",
                    dest.tenant, dest.dataset, dest.tenant, dest.dataset
                );
                remark(tx, dest, &note).await?;
                follows = Some((note, old.schema.clone()));
            }
        }
    }
    if written.wrote {
        let shape = follows.as_ref().map_or(schema, |(_, old)| old);
        table::maintain(tx, dest, shape).await?;
    }
    Ok(follows.map(|(note, _)| note))
}

/// Builds the typed table for version `number` and its indexes, and records which
/// version it follows.
async fn build(
    tx: &Transaction<'_>,
    dest: &Destination,
    settings: &DatasetSettings,
    number: i32,
    schema: &Schema,
) -> Result<Option<String>, TypedError> {
    if let Some(note) = table::build(tx, dest, schema).await? {
        remark(tx, dest, &note).await?;
        return Ok(Some(note));
    }
    record(tx, dest, number).await?;
    index::ensure(tx, dest, settings, schema, Build::Here).await?;
    stats::ensure(tx, dest, schema, Storage::Structured).await?;
    Ok(None)
}

/// The schema version the typed table's columns follow.
async fn typed_version(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<Option<i32>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "SELECT typed_version FROM bronze.datasets WHERE tenant = $1 AND dataset = $2",
            &[&dest.tenant.as_str(), &dest.dataset.as_str()],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// Records that the typed table follows `version`, the current one.
async fn record(
    tx: &Transaction<'_>,
    dest: &Destination,
    version: i32,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE bronze.datasets SET typed_version = $3, typed_note = NULL
         WHERE tenant = $1 AND dataset = $2",
        &[&dest.tenant.as_str(), &dest.dataset.as_str(), &version],
    )
    .await?;
    Ok(())
}

/// Records why the typed table does not follow the current version.
async fn remark(
    tx: &Transaction<'_>,
    dest: &Destination,
    note: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE bronze.datasets SET typed_note = $3 WHERE tenant = $1 AND dataset = $2",
        &[&dest.tenant.as_str(), &dest.dataset.as_str(), &note],
    )
    .await?;
    Ok(())
}

/// What [`apply`] or [`rebuild`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The typed relation was (re)made: a table built or a view created.
    pub remade: bool,
    /// Indexes built `CONCURRENTLY` after the settings were committed.
    pub concurrent_indexes: usize,
    /// Why the typed relation is not what the settings ask, when it is not.
    pub note: Option<String>,
}

/// Whether the relation is remade when it already has the right kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remake {
    /// Only when the storage changed (or the relation is missing).
    WhenSwitched,
    /// Always, from the current version: `bronze typed rebuild`.
    Always,
}

/// Brings the typed relation in line with the dataset's settings, once, after they
/// changed: switching to `structured` builds the table from the current rows,
/// switching to `jsonb` puts the view back, and the indexes named are built (large
/// relations `CONCURRENTLY`, after the rest has committed). A dataset without a
/// schema version yet waits for its first load.
pub async fn apply(client: &mut Client, dest: &Destination) -> Result<Applied, TypedError> {
    settle(client, dest, Remake::WhenSwitched).await
}

/// `bronze typed rebuild`: makes the typed relation again from the current rows and
/// version (a table left behind by a breaking change catches up), and its indexes.
pub async fn rebuild(client: &mut Client, dest: &Destination) -> Result<Applied, TypedError> {
    settle(client, dest, Remake::Always).await
}

async fn settle(
    client: &mut Client,
    dest: &Destination,
    remake: Remake,
) -> Result<Applied, TypedError> {
    let tx = client.transaction().await?;
    lock_dataset(&tx, dest).await?;
    let settings = dataset_settings(&tx, dest).await?;
    let Some(current) = registry::current(&tx, dest).await? else {
        return Ok(Applied::default());
    };
    let kind = table::kind(&tx, dest).await?;
    let wrong_kind = match settings.storage {
        Storage::Jsonb => kind != Kind::View,
        Storage::Structured => kind != Kind::Table,
    };
    let mut applied = Applied::default();
    if wrong_kind || remake == Remake::Always {
        applied.remade = true;
        applied.note = match settings.storage {
            Storage::Structured => {
                build(&tx, dest, &settings, current.number, &current.schema).await?
            }
            Storage::Jsonb => to_view(&tx, dest, &current.schema).await?,
        };
    }
    stats::ensure(&tx, dest, &current.schema, settings.storage).await?;
    let later = index::ensure(&tx, dest, &settings, &current.schema, Build::HereIfSmall).await?;
    tx.commit().await?;
    for statement in &later {
        client.batch_execute(statement).await?;
    }
    applied.concurrent_indexes = later.len();
    Ok(applied)
}

/// Replaces a typed table by the view, with the table's privileges.
async fn to_view(
    tx: &Transaction<'_>,
    dest: &Destination,
    schema: &Schema,
) -> Result<Option<String>, TypedError> {
    let grants = table::grants(tx, dest).await?;
    if table::kind(tx, dest).await? == Kind::Table {
        tx.batch_execute(&format!("DROP TABLE {}", table::name(dest)))
            .await?;
    }
    let note = create_view(tx, dest, schema).await?;
    for grant in grants {
        tx.batch_execute(&grant).await?;
    }
    if table::kind(tx, dest).await? == Kind::View {
        table::hand_over(tx, dest).await?;
    }
    tx.execute(
        "UPDATE bronze.datasets SET typed_version = NULL, typed_note = NULL
         WHERE tenant = $1 AND dataset = $2",
        &[&dest.tenant.as_str(), &dest.dataset.as_str()],
    )
    .await?;
    Ok(note)
}
