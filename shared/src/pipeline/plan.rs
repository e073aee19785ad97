//! Which way a file's rows go into its table: the one place the path is chosen, each
//! path one function.
//!
//! A new table's path is chosen before the file is read (only a file that can be read
//! again may try the first fill, which may be undone). A table with rows stages the
//! file's keys and hashes first, and its path is chosen from what they show.

use std::io::Read;

use super::fill::{self, Why};
use super::job::{Decided, Job};
use super::merge::Merged;
use super::stage::Payloads;
use super::{LoadError, Reopen};

/// The paths a file can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// A new table, a file that can be read again: its rows COPY frozen into the table
    /// itself ([`fill`]); undone when only the file's end says it cannot be so.
    FirstFill,
    /// A new table: the file is staged with its payloads and each record inserted as
    /// version 1, by one statement; with a key twice, versioned as below.
    StagedFirst { keys_repeat: bool },
    /// A table with rows and a file an earlier in-order load brought as it is, with
    /// nothing written since: every record is unchanged, nothing is joined.
    SeenBefore,
    /// A table with rows, a file in order with no key twice: one join with the current
    /// rows finds what changed; the second read brings those payloads.
    ChangedKeys,
    /// A table with rows and a key twice in the file, or a file older than loads
    /// already made: each record's version is planned against its neighbours.
    Versioned { late: bool },
}

impl Plan {
    /// A new table's path: the first fill when the file can be read again and no
    /// first fill was undone.
    pub fn for_new_table(can_reread: bool, undone: Option<Why>) -> Plan {
        match (can_reread, undone) {
            (true, None) => Plan::FirstFill,
            (_, undone) => Plan::StagedFirst {
                keys_repeat: undone == Some(Why::KeysRepeat),
            },
        }
    }

    /// The path into a table with rows, from what staging the keys showed: whether an
    /// earlier load came from a newer source (`late`), whether a key came twice, and
    /// whether an earlier load vouches for these very records (`seen`, asked only of
    /// a file in order without repeats).
    pub fn for_rows(late: bool, keys_repeat: bool, seen: bool) -> Plan {
        match (late, keys_repeat, seen) {
            (false, false, true) => Plan::SeenBefore,
            (false, false, false) => Plan::ChangedKeys,
            (late, _, _) => Plan::Versioned { late },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Plan::FirstFill => "first fill",
            Plan::StagedFirst { .. } => "staged first load",
            Plan::SeenBefore => "seen before",
            Plan::ChangedKeys => "changed keys",
            Plan::Versioned { .. } => "versioned merge",
        }
    }
}

/// Loads `source` by the path its table and its keys call for. `again` reads it once
/// more, when it can be.
pub(super) async fn run(
    job: &Job<'_>,
    source: Box<dyn Read + Send>,
    again: Option<&dyn Reopen>,
    new_table: bool,
) -> Result<(Decided, Merged), LoadError> {
    if !new_table {
        return into_rows(job, source, again).await;
    }
    let plan = Plan::for_new_table(again.is_some(), None);
    tracing::debug!(file = %job.lineage.key, plan = plan.name(), "Load path chosen.");
    match (plan, again) {
        (Plan::FirstFill, Some(again)) => first_fill(job, source, again).await,
        (Plan::StagedFirst { keys_repeat }, _) => staged_first(job, source, keys_repeat).await,
        (other, _) => unreachable_plan(other),
    }
}

/// A new table filled by the file's first read; when the file's end undoes that, the
/// path its reason calls for, on the file read again.
async fn first_fill(
    job: &Job<'_>,
    source: Box<dyn Read + Send>,
    again: &dyn Reopen,
) -> Result<(Decided, Merged), LoadError> {
    let why = match fill::first_fill(job, source).await? {
        Ok(done) => return Ok(done),
        Err(why) => why,
    };
    tracing::info!(file = %job.lineage.key, why = why.as_str(), "Reading again into staging.");
    match Plan::for_new_table(true, Some(why)) {
        Plan::StagedFirst { keys_repeat } => {
            staged_first(job, again.reopen().await?, keys_repeat).await
        }
        other => unreachable_plan(other),
    }
}

/// A new table's rows through staging: one insert, or the versioned merge when a key
/// comes twice (known before, or found by the primary key).
async fn staged_first(
    job: &Job<'_>,
    source: Box<dyn Read + Send>,
    keys_repeat: bool,
) -> Result<(Decided, Merged), LoadError> {
    let read = job.stage(source, Payloads::Staged).await?;
    let merge = job.merge(&read, None);
    crate::fault::point("merge").await;
    if !keys_repeat {
        if let Some(inserted) = merge.insert_first().await? {
            return Ok((read, Merged::unversioned(inserted)));
        }
    }
    merge.index_new_table().await?;
    merge.analyze_for_joins().await?;
    let duplicates = merge.key_duplicates().await?;
    let merged = merge
        .versioning(Versioning {
            late: false,
            new_table: true,
            whole: false,
            key_duplicates: duplicates,
        })
        .await?;
    Ok((read, merged))
}

/// A table with rows: keys and hashes staged (payloads too when the file cannot be
/// read again), then the path they call for.
async fn into_rows(
    job: &Job<'_>,
    source: Box<dyn Read + Send>,
    again: Option<&dyn Reopen>,
) -> Result<(Decided, Merged), LoadError> {
    let payloads = if again.is_some() {
        Payloads::Reread
    } else {
        Payloads::Staged
    };
    let read = job.stage(source, payloads).await?;
    let merge = job.merge(&read, again);
    crate::fault::point("merge").await;
    // A file with rejected records is not a complete snapshot: deleting the keys of
    // the records it failed to read would lose data.
    let whole = job.settings.snapshot && read.staged.rejects.count == 0;
    let late = merge.arrived_late().await?;
    let repeats_possible = read.staged.keys_may_repeat;
    let seen = !late && !repeats_possible && merge.seen_before(&read.staged, whole).await?;
    if !seen {
        merge.analyze_for_joins().await?;
    }
    let key_duplicates = if !seen && repeats_possible {
        merge.key_duplicates().await?
    } else {
        0
    };
    let plan = Plan::for_rows(late, key_duplicates > 0, seen);
    tracing::debug!(file = %job.lineage.key, plan = plan.name(), "Load path chosen.");
    let merged = match plan {
        Plan::SeenBefore => Merged::unversioned(0),
        Plan::ChangedKeys => merge.changed_keys(whole).await?,
        Plan::Versioned { late } => {
            merge
                .versioning(Versioning {
                    late,
                    new_table: false,
                    whole,
                    key_duplicates,
                })
                .await?
        }
        other => unreachable_plan(other)?,
    };
    Ok((read, merged))
}

/// What the versioned merge must know.
pub(super) struct Versioning {
    /// The file is older than loads already made.
    pub late: bool,
    /// The table was made by this load: no rows to supersede or delete.
    pub new_table: bool,
    /// The file is a complete snapshot: keys it lacks get a `delete` version.
    pub whole: bool,
    pub key_duplicates: i64,
}

/// A plan `run` never chooses where it was asked for: a defect, reported as such
/// rather than a panic in the load function.
fn unreachable_plan<T>(plan: Plan) -> Result<T, LoadError> {
    Err(LoadError::Transient(format!(
        "internal: the {} path was chosen where it cannot apply",
        plan.name()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table a newcomer reads the paths from, as code.
    #[test]
    fn each_situation_has_its_one_path() {
        assert_eq!(Plan::for_new_table(true, None), Plan::FirstFill);
        assert_eq!(
            Plan::for_new_table(false, None),
            Plan::StagedFirst { keys_repeat: false }
        );
        assert_eq!(
            Plan::for_new_table(true, Some(Why::KeysRepeat)),
            Plan::StagedFirst { keys_repeat: true }
        );
        assert_eq!(
            Plan::for_new_table(true, Some(Why::SchemaVersion)),
            Plan::StagedFirst { keys_repeat: false }
        );
        assert_eq!(Plan::for_rows(false, false, true), Plan::SeenBefore);
        assert_eq!(Plan::for_rows(false, false, false), Plan::ChangedKeys);
        assert_eq!(
            Plan::for_rows(false, true, false),
            Plan::Versioned { late: false }
        );
        assert_eq!(
            Plan::for_rows(true, false, false),
            Plan::Versioned { late: true }
        );
    }
}
