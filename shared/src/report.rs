//! What operators ask of the meta tables: a dataset's schema versions and what changed
//! between them, the quality of its recent loads, the loads themselves and the records
//! they refused.
//!
//! The queries live in the library rather than in the CLI so that tests and any other
//! front end read exactly the figures the `bronze` command prints. Every result is a
//! plain serialisable struct whose field names are the JSON contract of `--json`.
//! Names reach SQL only as bind parameters.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

use crate::infer::ColumnQuality;
use crate::keys::Destination;
use crate::registry::{self, RegistryError, Version};
use crate::schema::{diff, Change, FieldType};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("database: {0}")]
    /// Reading the meta tables failed.
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    /// A stored schema version cannot be read.
    Registry(#[from] RegistryError),
    #[error("unknown dataset {0}: it has no loads and no settings")]
    /// No loads and no settings name the dataset.
    UnknownDataset(String),
    #[error("{0} has no schema version yet: none of its loads had records")]
    /// The dataset has loads but no schema version.
    NoVersions(String),
    #[error("{dataset} has no schema version {version} (it has versions 1 to {latest})")]
    /// The version asked for does not exist.
    UnknownVersion {
        /// `tenant/dataset`.
        dataset: String,
        /// The version asked for.
        version: i32,
        /// The dataset's latest version.
        latest: i32,
    },
    #[error("{0} has a single schema version: there is no previous one to compare it with")]
    /// A diff needs two versions.
    SingleVersion(String),
    #[error("unknown load {0}")]
    /// No load has this id.
    UnknownLoad(i64),
}

/// `tenant/dataset`, the way object keys name a dataset.
fn label(dest: &Destination) -> String {
    format!("{}/{}", dest.tenant, dest.dataset)
}

/// A point in time as RFC 3339 in UTC, to the second (`2024-05-01T12:30:00Z`): the
/// same text for people and scripts, without a date library for one format.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// [`rfc3339`] of a time that may be missing.
pub fn rfc3339_opt(t: Option<SystemTime>) -> Option<String> {
    t.map(rfc3339)
}

/// Whether the dataset exists at all: a load (loaded or rejected) or settings name it.
/// Tells "no such dataset" (likely a typo) from "nothing recorded yet".
pub async fn dataset_known(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<bool, ReportError> {
    let row = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM bronze.loads WHERE tenant = $1 AND dataset = $2)
                 OR EXISTS (SELECT 1 FROM bronze.datasets WHERE tenant = $1 AND dataset = $2)",
            &[&dest.tenant.as_str(), &dest.dataset.as_str()],
        )
        .await?;
    Ok(row.get(0))
}

async fn require_dataset(db: &impl GenericClient, dest: &Destination) -> Result<(), ReportError> {
    match dataset_known(db, dest).await? {
        true => Ok(()),
        false => Err(ReportError::UnknownDataset(label(dest))),
    }
}

/// One stored schema version, without its columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionInfo {
    /// 1, 2, … per dataset.
    pub version: i32,
    /// SHA-256 of what the version promises.
    pub fingerprint: String,
    /// The load that introduced the version.
    pub load_id: i64,
    /// When it was introduced, RFC 3339.
    pub created_at: String,
    /// Whether any change from the previous version breaks consumers.
    pub breaking: bool,
    /// The classified changes from the previous version (none for version 1).
    pub changes: Vec<Change>,
}

impl From<&Version> for VersionInfo {
    fn from(v: &Version) -> Self {
        Self {
            version: v.number,
            fingerprint: v.fingerprint.clone(),
            load_id: v.load_id,
            created_at: rfc3339(v.created_at),
            breaking: v.breaking,
            changes: v.changes.clone(),
        }
    }
}

/// A column as a version promises it; the evidence kept to spot renames is left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnView {
    /// The column's name, as in the payload.
    pub name: String,
    #[serde(rename = "type")]
    /// Its type.
    pub kind: FieldType,
    /// Whether it may be null.
    pub nullable: bool,
    /// Its semantic type (email, url, …), if any.
    pub semantic: Option<String>,
    /// The layout of its dates and times, if any.
    pub format: Option<String>,
}

/// `bronze schema show`: one version and its columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaView {
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    #[serde(flatten)]
    /// The version shown.
    pub info: VersionInfo,
    /// Its columns, in file order.
    pub columns: Vec<ColumnView>,
}

/// `bronze schema history`: every version, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaHistory {
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// `bronze schema diff`: the changes from one version to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaDiff {
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    /// The older version compared.
    pub from: i32,
    /// The newer one.
    pub to: i32,
    /// Whether any change breaks a consumer.
    pub breaking: bool,
    /// The classified changes.
    pub changes: Vec<Change>,
}

/// Every version of a dataset that exists; an unknown dataset is an error, so a typo
/// is not mistaken for a dataset without versions.
async fn versions(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<Vec<Version>, ReportError> {
    let versions = registry::history(db, dest).await?;
    if versions.is_empty() {
        require_dataset(db, dest).await?;
    }
    Ok(versions)
}

/// Version `number` among `versions` (oldest first), or a message naming the range.
fn pick<'a>(
    versions: &'a [Version],
    dest: &Destination,
    number: i32,
) -> Result<&'a Version, ReportError> {
    let latest = versions
        .last()
        .ok_or_else(|| ReportError::NoVersions(label(dest)))?;
    versions
        .iter()
        .find(|v| v.number == number)
        .ok_or_else(|| ReportError::UnknownVersion {
            dataset: label(dest),
            version: number,
            latest: latest.number,
        })
}

fn latest<'a>(versions: &'a [Version], dest: &Destination) -> Result<&'a Version, ReportError> {
    versions
        .last()
        .ok_or_else(|| ReportError::NoVersions(label(dest)))
}

/// Version `number` of the dataset (the current one when `None`) with its columns.
pub async fn schema_show(
    db: &impl GenericClient,
    dest: &Destination,
    number: Option<i32>,
) -> Result<SchemaView, ReportError> {
    let versions = versions(db, dest).await?;
    let version = match number {
        Some(n) => pick(&versions, dest, n)?,
        None => latest(&versions, dest)?,
    };
    let columns = version
        .schema
        .fields
        .iter()
        .map(|f| ColumnView {
            name: f.name.clone(),
            kind: f.kind,
            nullable: f.nullable,
            semantic: f.semantic.clone(),
            format: f.format.clone(),
        })
        .collect();
    Ok(SchemaView {
        tenant: dest.tenant.to_string(),
        dataset: dest.dataset.to_string(),
        info: version.into(),
        columns,
    })
}

/// Every version of the dataset with the changes each brought, oldest first.
pub async fn schema_history(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<SchemaHistory, ReportError> {
    let versions = versions(db, dest).await?;
    Ok(SchemaHistory {
        tenant: dest.tenant.to_string(),
        dataset: dest.dataset.to_string(),
        versions: versions.iter().map(VersionInfo::from).collect(),
    })
}

/// The changes from version `from` to version `to`, recomputed from the stored columns
/// so any two versions compare, not only neighbours. `to` defaults to the current
/// version, `from` to the one before `to`.
pub async fn schema_diff(
    db: &impl GenericClient,
    dest: &Destination,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<SchemaDiff, ReportError> {
    let versions = versions(db, dest).await?;
    let new = match to {
        Some(n) => pick(&versions, dest, n)?,
        None => latest(&versions, dest)?,
    };
    let old = match from {
        Some(n) => pick(&versions, dest, n)?,
        None => versions
            .iter()
            .rev()
            .find(|v| v.number < new.number)
            .ok_or_else(|| ReportError::SingleVersion(label(dest)))?,
    };
    let changes = diff(&old.schema, &new.schema);
    Ok(SchemaDiff {
        tenant: dest.tenant.to_string(),
        dataset: dest.dataset.to_string(),
        from: old.number,
        to: new.number,
        breaking: changes.iter().any(|c| c.breaking),
        changes,
    })
}

/// The quality of one load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadQuality {
    /// The load.
    pub load_id: i64,
    /// When it finished, RFC 3339.
    pub finished_at: Option<String>,
    /// Records it read.
    pub records: i64,
    /// The schema version its rows belong to.
    pub schema_version: Option<i32>,
    /// The mean of the column scores; `None` for a load without records.
    pub score: Option<f64>,
    /// For keyed datasets: records whose key an earlier one of the file had.
    pub key_duplicates: Option<i64>,
    /// Each column's figures.
    pub columns: Vec<ColumnQuality>,
}

impl LoadQuality {
    /// The column with the lowest score (the first of equals): where to look first.
    pub fn weakest(&self) -> Option<&ColumnQuality> {
        self.columns
            .iter()
            .reduce(|low, c| if c.score < low.score { c } else { low })
    }
}

/// `bronze quality`: a dataset's most recent loads, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    /// The mean score of the listed loads that have one.
    pub mean_score: Option<f64>,
    /// The most recent loads, newest first.
    pub loads: Vec<LoadQuality>,
}

/// The quality of the dataset's last `last` successful loads, newest first.
pub async fn quality(
    db: &impl GenericClient,
    dest: &Destination,
    last: i64,
) -> Result<QualityReport, ReportError> {
    require_dataset(db, dest).await?;
    let rows = db
        .query(
            "SELECT id, finished_at, records_in, schema_version, quality_score, key_duplicates
             FROM bronze.loads
             WHERE tenant = $1 AND dataset = $2 AND status = 'loaded'
             ORDER BY id DESC LIMIT $3",
            &[&dest.tenant.as_str(), &dest.dataset.as_str(), &last],
        )
        .await?;
    let mut loads: Vec<LoadQuality> = rows
        .iter()
        .map(|r| LoadQuality {
            load_id: r.get(0),
            finished_at: rfc3339_opt(r.get(1)),
            records: r.get(2),
            schema_version: r.get(3),
            score: r.get(4),
            key_duplicates: r.get(5),
            columns: Vec::new(),
        })
        .collect();
    attach_columns(db, &mut loads).await?;
    let scores: Vec<f64> = loads.iter().filter_map(|l| l.score).collect();
    let mean_score = match scores.len() {
        0 => None,
        n => Some(scores.iter().sum::<f64>() / n as f64),
    };
    Ok(QualityReport {
        tenant: dest.tenant.to_string(),
        dataset: dest.dataset.to_string(),
        mean_score,
        loads,
    })
}

/// Fills each load's per-column figures with one query for all of them.
async fn attach_columns(
    db: &impl GenericClient,
    loads: &mut [LoadQuality],
) -> Result<(), ReportError> {
    let ids: Vec<i64> = loads.iter().map(|l| l.load_id).collect();
    let rows = db
        .query(
            "SELECT load_id, position, column_name, type, semantic, is_key, records, non_null,
                    valid, distinct_estimate, duplicates, consistent, completeness, validity,
                    uniqueness, consistency, score
             FROM bronze.quality WHERE load_id = ANY($1) ORDER BY load_id, position",
            &[&ids],
        )
        .await?;
    for row in &rows {
        let load_id: i64 = row.get(0);
        if let Some(load) = loads.iter_mut().find(|l| l.load_id == load_id) {
            load.columns.push(column_figures(row));
        }
    }
    Ok(())
}

/// A `bronze.quality` row, read back into the figures the load computed.
fn column_figures(row: &Row) -> ColumnQuality {
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    let maybe = |i: usize| {
        row.get::<_, Option<i64>>(i)
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    ColumnQuality {
        position: row.get(1),
        name: row.get(2),
        kind: FieldType::parse(row.get(3)).unwrap_or(FieldType::String),
        semantic: row.get(4),
        is_key: row.get(5),
        records: count(6),
        non_null: count(7),
        valid: maybe(8),
        distinct: count(9),
        duplicates: maybe(10),
        consistent: maybe(11),
        completeness: row.get(12),
        validity: row.get(13),
        uniqueness: row.get(14),
        consistency: row.get(15),
        score: row.get(16),
    }
}

/// The statuses a load ends with, and those of objects in the ledger that have no
/// load yet: waiting (`pending`), being loaded or left by an attempt that died
/// (`loading`), given up on (`failed`).
pub const LOAD_STATUSES: [&str; 5] = ["loaded", "rejected", "pending", "loading", "failed"];

/// Whether `status` is an object's in the ledger rather than a load's.
pub fn is_ledger_status(status: &str) -> bool {
    matches!(status, "pending" | "loading" | "failed")
}

/// An object of the ledger that is not loaded, rejected or skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectRow {
    /// The ledger row's id.
    pub object_id: i64,
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The tenant its key names, when valid.
    pub tenant: Option<String>,
    /// The dataset its key names, when valid.
    pub dataset: Option<String>,
    /// `pending`, `loading` or `failed`.
    pub status: String,
    /// Attempts begun.
    pub attempts: i32,
    /// Attempts that died before they finished.
    pub deaths: i32,
    /// Seconds since the row last changed: a `loading` row this old, with no worker
    /// holding it, was left by an attempt that died.
    pub age_seconds: i64,
    /// The last fault, or why it was given up on.
    pub error: Option<String>,
}

/// `bronze loads --status pending|loading|failed`: the ledger's objects in that state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectList {
    /// The matching objects, oldest change first.
    pub objects: Vec<ObjectRow>,
}

/// The ledger's objects in a state without a load, oldest first. Tenant and dataset
/// compare as in [`loads`].
pub async fn unfinished(
    db: &impl GenericClient,
    filter: &LoadFilter,
) -> Result<ObjectList, ReportError> {
    let tenant = filter.tenant.as_deref().map(str::to_ascii_lowercase);
    let dataset = filter.dataset.as_deref().map(str::to_ascii_lowercase);
    let rows = db
        .query(
            "SELECT id, bucket, key, tenant, dataset, status, attempts, deaths,
                    extract(epoch FROM now() - updated_at)::bigint, error
             FROM bronze.objects
             WHERE status = $1
               AND ($2::text IS NULL OR tenant = $2)
               AND ($3::text IS NULL OR dataset = $3)
             ORDER BY updated_at LIMIT $4",
            &[&filter.status, &tenant, &dataset, &filter.last],
        )
        .await?;
    let objects = rows
        .iter()
        .map(|row| ObjectRow {
            object_id: row.get(0),
            bucket: row.get(1),
            key: row.get(2),
            tenant: row.get(3),
            dataset: row.get(4),
            status: row.get(5),
            attempts: row.get(6),
            deaths: row.get(7),
            age_seconds: row.get(8),
            error: row.get(9),
        })
        .collect();
    Ok(ObjectList { objects })
}

/// Which loads `bronze loads` lists; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadFilter {
    /// A load's or ledger status, or any.
    pub status: Option<String>,
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only datasets of this name.
    pub dataset: Option<String>,
    /// At most this many, the most recent.
    pub last: i64,
}

/// One load, as `bronze.loads` records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadRow {
    /// The load.
    pub load_id: i64,
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    /// The bucket, for objects from S3.
    pub source_bucket: Option<String>,
    /// The key, or a local file's path.
    pub source_key: String,
    /// `loaded` or `rejected`.
    pub status: String,
    /// The format read.
    pub format: Option<String>,
    /// Records read.
    pub records: i64,
    /// Records that were new keys.
    pub inserted: i64,
    /// New versions of known keys.
    pub updated: i64,
    /// Records equal to their key's version before.
    pub unchanged: i64,
    /// Keys a snapshot lacked.
    pub deleted: i64,
    /// Records refused.
    pub rejected: i64,
    /// The schema version its rows belong to.
    pub schema_version: Option<i32>,
    /// Its quality score.
    pub quality_score: Option<f64>,
    /// Records whose key an earlier one of the file had.
    pub key_duplicates: Option<i64>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// Why a rejected file was.
    pub error: Option<String>,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// When it finished, RFC 3339.
    pub finished_at: Option<String>,
}

/// `bronze loads`: the matching loads, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadList {
    /// The matching loads, newest first.
    pub loads: Vec<LoadRow>,
}

/// The most recent loads matching `filter`, newest first. Tenant and dataset compare
/// lower-cased (ASCII only, as names are written: see `keys::Name`).
pub async fn loads(db: &impl GenericClient, filter: &LoadFilter) -> Result<LoadList, ReportError> {
    let tenant = filter.tenant.as_deref().map(str::to_ascii_lowercase);
    let dataset = filter.dataset.as_deref().map(str::to_ascii_lowercase);
    let rows = db
        .query(
            "SELECT id, tenant, dataset, source_bucket, source_key, status, format, records_in,
                    inserted, updated, unchanged, deleted, rejected, schema_version,
                    quality_score, key_duplicates, duration_ms, error, started_at, finished_at
             FROM bronze.loads
             WHERE ($1::text IS NULL OR status = $1)
               AND ($2::text IS NULL OR tenant = $2)
               AND ($3::text IS NULL OR dataset = $3)
             ORDER BY id DESC LIMIT $4",
            &[&filter.status, &tenant, &dataset, &filter.last],
        )
        .await?;
    Ok(LoadList {
        loads: rows.iter().map(load_row).collect(),
    })
}

fn load_row(row: &Row) -> LoadRow {
    LoadRow {
        load_id: row.get(0),
        tenant: row.get(1),
        dataset: row.get(2),
        source_bucket: row.get(3),
        source_key: row.get(4),
        status: row.get(5),
        format: row.get(6),
        records: row.get(7),
        inserted: row.get(8),
        updated: row.get(9),
        unchanged: row.get(10),
        deleted: row.get(11),
        rejected: row.get(12),
        schema_version: row.get(13),
        quality_score: row.get(14),
        key_duplicates: row.get(15),
        duration_ms: row.get(16),
        error: row.get(17),
        started_at: rfc3339(row.get(18)),
        finished_at: rfc3339_opt(row.get(19)),
    }
}

/// One refused record (or, for a rejected file, the reason the file was refused).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject {
    /// The line of the record, when it had one.
    pub line: Option<i64>,
    /// Why it was refused.
    pub reason: String,
    /// The record's text as read; absent when the whole file was refused.
    pub raw: Option<String>,
}

/// `bronze rejects`: what one load refused, in line order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectList {
    /// The load.
    pub load_id: i64,
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    /// The file it read.
    pub source_key: String,
    /// How the load ended.
    pub status: String,
    /// How many the load refused; more than `rejects` holds when the list was capped.
    pub total: i64,
    /// The rejects kept (the first ones, in line order).
    pub rejects: Vec<Reject>,
}

/// The first `limit` records load `load_id` refused, in line order.
pub async fn rejects(
    db: &impl GenericClient,
    load_id: i64,
    limit: i64,
) -> Result<RejectList, ReportError> {
    let load = db
        .query_opt(
            "SELECT tenant, dataset, source_key, status,
                    (SELECT count(*) FROM bronze.rejects WHERE load_id = $1)
             FROM bronze.loads WHERE id = $1",
            &[&load_id],
        )
        .await?
        .ok_or(ReportError::UnknownLoad(load_id))?;
    let rows = db
        .query(
            "SELECT line, reason, raw FROM bronze.rejects WHERE load_id = $1
             ORDER BY line NULLS FIRST, id LIMIT $2",
            &[&load_id, &limit],
        )
        .await?;
    Ok(RejectList {
        load_id,
        tenant: load.get(0),
        dataset: load.get(1),
        source_key: load.get(2),
        status: load.get(3),
        total: load.get(4),
        rejects: rows
            .iter()
            .map(|r| Reject {
                line: r.get(0),
                reason: r.get(1),
                raw: r.get(2),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn rfc3339_is_utc_to_the_second() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(86_400)),
            "1969-12-31T00:00:00Z"
        );
    }

    fn column(name: &str, score: f64) -> ColumnQuality {
        ColumnQuality {
            position: 0,
            name: name.into(),
            kind: FieldType::String,
            semantic: None,
            is_key: false,
            records: 1,
            non_null: 1,
            valid: None,
            distinct: 1,
            duplicates: None,
            consistent: None,
            completeness: score,
            validity: None,
            uniqueness: None,
            consistency: None,
            score,
        }
    }

    #[test]
    fn the_weakest_column_is_the_first_lowest_score() {
        let load = LoadQuality {
            load_id: 1,
            finished_at: None,
            records: 1,
            schema_version: Some(1),
            score: Some(0.8),
            key_duplicates: None,
            columns: vec![column("a", 1.0), column("b", 0.5), column("c", 0.5)],
        };
        assert_eq!(load.weakest().map(|c| c.name.as_str()), Some("b"));
    }
}
