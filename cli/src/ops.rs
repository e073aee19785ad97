//! The operator commands: what bronze loaded, refused and inferred, as tables for
//! people and, with `--json`, one JSON document for scripts. The figures come from
//! `bronze::report`; this module only decides how they look.

use bronze::db::Db;
use bronze::keys::Destination;
use bronze::report::{
    self, LoadFilter, LoadList, ObjectList, QualityReport, RejectList, SchemaDiff, SchemaHistory,
    SchemaView,
};
use bronze::schema::Change;
use clap::{Args, Subcommand};

use crate::table::{Column, Table};

#[derive(Subcommand)]
pub enum SchemaCommand {
    /// The columns of the current version (or of --version N).
    Show {
        tenant: String,
        dataset: String,
        #[arg(long, value_name = "N")]
        version: Option<i32>,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every version: when, by which load, and what changed.
    History {
        tenant: String,
        dataset: String,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The classified changes from V1 to V2 (default: the previous version to the
    /// current one; V1 alone: V1 to the current one).
    Diff {
        tenant: String,
        dataset: String,
        v1: Option<i32>,
        v2: Option<i32>,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct QualityArgs {
    tenant: String,
    dataset: String,
    /// How many of the most recent loads.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    last: u32,
    /// One JSON document, with every column's figures, instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LoadsArgs {
    /// Only loads that ended so (loaded, rejected), or the ledger's objects that have
    /// no load yet: pending, loading (an attempt running, or one that died), failed.
    #[arg(long, value_parser = report::LOAD_STATUSES)]
    status: Option<String>,
    /// Only this tenant's loads.
    #[arg(long)]
    tenant: Option<String>,
    /// Only loads into datasets of this name.
    #[arg(long)]
    dataset: Option<String>,
    /// How many of the most recent loads.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    last: u32,
    /// One JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RejectsArgs {
    load_id: i64,
    /// At most this many, in line order; the total is always shown.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    last: u32,
    /// One JSON document, with the full text of every reject, instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints a serialised document; the caller serialises, since the concrete types
/// are all this crate knows of serde.
fn print_json(text: serde_json::Result<String>) -> Result<(), String> {
    let text = text.map_err(|e| format!("encoding JSON: {e}"))?;
    say!("{text}");
    Ok(())
}

pub fn print_table(table: &Table) -> Result<(), String> {
    for line in table.lines() {
        say!("{line}");
    }
    Ok(())
}

fn destination(tenant: &str, dataset: &str) -> Result<Destination, String> {
    Destination::new(tenant, dataset).map_err(|e| e.to_string())
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}"))
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

impl SchemaCommand {
    fn names(&self) -> (&str, &str) {
        match self {
            SchemaCommand::Show {
                tenant, dataset, ..
            }
            | SchemaCommand::History {
                tenant, dataset, ..
            }
            | SchemaCommand::Diff {
                tenant, dataset, ..
            } => (tenant, dataset),
        }
    }
}

/// Checks the names before connecting, so a typo is reported as one.
pub async fn schema(command: SchemaCommand) -> Result<(), String> {
    let (tenant, dataset) = command.names();
    let dest = destination(tenant, dataset)?;
    let db = reader();
    let client = db.client().await.map_err(|e| e.to_string())?;
    let client = &*client;
    match command {
        SchemaCommand::Show { version, json, .. } => {
            let view = report::schema_show(client, &dest, version)
                .await
                .map_err(|e| e.to_string())?;
            if json {
                print_json(serde_json::to_string_pretty(&view))
            } else {
                print_schema(&view)
            }
        }
        SchemaCommand::History { json, .. } => {
            let history = report::schema_history(client, &dest)
                .await
                .map_err(|e| e.to_string())?;
            if json {
                print_json(serde_json::to_string_pretty(&history))
            } else {
                print_history(&history)
            }
        }
        SchemaCommand::Diff { v1, v2, json, .. } => {
            let diff = report::schema_diff(client, &dest, v1, v2)
                .await
                .map_err(|e| e.to_string())?;
            if json {
                print_json(serde_json::to_string_pretty(&diff))
            } else {
                print_diff(&diff)
            }
        }
    }
}

fn print_schema(view: &SchemaView) -> Result<(), String> {
    let info = &view.info;
    let short: String = info.fingerprint.chars().take(12).collect();
    say!(
        "{}/{}  version {}  fingerprint {short}  load {}  created {}",
        view.tenant,
        view.dataset,
        info.version,
        info.load_id,
        info.created_at
    );
    let mut table = Table::new(&[
        Column::text("NAME"),
        Column::text("TYPE"),
        Column::text("NULLABLE"),
        Column::text("SEMANTIC"),
        Column::text("FORMAT"),
    ]);
    for c in &view.columns {
        table.row([
            c.name.as_str(),
            c.kind.name(),
            yes_no(c.nullable),
            c.semantic.as_deref().unwrap_or("-"),
            c.format.as_deref().unwrap_or("-"),
        ]);
    }
    print_table(&table)
}

/// The changes as one line, in the words of their `Display`.
fn summary(changes: &[Change]) -> String {
    match changes.len() {
        0 => "-".to_owned(),
        _ => changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn print_history(history: &SchemaHistory) -> Result<(), String> {
    let mut table = Table::new(&[
        Column::number("VERSION"),
        Column::text("CREATED"),
        Column::number("LOAD"),
        Column::number("CHANGES"),
        Column::text("BREAKING"),
        Column::text("SUMMARY").max(100),
    ]);
    for v in &history.versions {
        table.row([
            v.version.to_string(),
            v.created_at.clone(),
            v.load_id.to_string(),
            v.changes.len().to_string(),
            yes_no(v.breaking).to_owned(),
            summary(&v.changes),
        ]);
    }
    if table.is_empty() {
        say!(
            "{}/{}: no schema version yet",
            history.tenant,
            history.dataset
        );
        return Ok(());
    }
    print_table(&table)
}

fn print_diff(diff: &SchemaDiff) -> Result<(), String> {
    let verdict = match (diff.changes.is_empty(), diff.breaking) {
        (true, _) => "no changes",
        (false, true) => "breaking",
        (false, false) => "compatible",
    };
    say!(
        "{}/{}  version {} → {}  {verdict}",
        diff.tenant,
        diff.dataset,
        diff.from,
        diff.to
    );
    if diff.changes.is_empty() {
        return Ok(());
    }
    let mut table = Table::new(&[
        Column::text("CHANGE"),
        Column::text("COLUMN"),
        Column::text("FROM").max(40),
        Column::text("TO").max(40),
        Column::text("BREAKING"),
    ]);
    for c in &diff.changes {
        table.row([
            c.change.name(),
            c.column.as_str(),
            c.from.as_deref().unwrap_or("-"),
            c.to.as_deref().unwrap_or("-"),
            yes_no(c.breaking),
        ]);
    }
    print_table(&table)
}

pub async fn quality(args: QualityArgs) -> Result<(), String> {
    let dest = destination(&args.tenant, &args.dataset)?;
    let db = reader();
    let client = db.client().await.map_err(|e| e.to_string())?;
    let quality = report::quality(&*client, &dest, i64::from(args.last))
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        print_json(serde_json::to_string_pretty(&quality))
    } else {
        print_quality(&quality)
    }
}

fn print_quality(quality: &QualityReport) -> Result<(), String> {
    let mut table = Table::new(&[
        Column::number("LOAD"),
        Column::text("FINISHED"),
        Column::number("RECORDS"),
        Column::number("VERSION"),
        Column::number("SCORE"),
        Column::text("WEAKEST COLUMN").max(60),
    ]);
    for load in &quality.loads {
        let weakest = load.weakest().map_or_else(
            || "-".to_owned(),
            |c| format!("{} ({:.3})", c.name, c.score),
        );
        table.row([
            load.load_id.to_string(),
            or_dash(load.finished_at.as_deref()),
            load.records.to_string(),
            or_dash(load.schema_version),
            score(load.score),
            weakest,
        ]);
    }
    if !table.is_empty() {
        print_table(&table)?;
    }
    let n = quality.loads.len();
    say!(
        "{}/{}: mean score {} over {n} load(s)",
        quality.tenant,
        quality.dataset,
        score(quality.mean_score)
    );
    Ok(())
}

pub async fn loads(args: LoadsArgs) -> Result<(), String> {
    let filter = LoadFilter {
        status: args.status,
        tenant: args.tenant,
        dataset: args.dataset,
        last: i64::from(args.last),
    };
    let db = reader();
    let client = db.client().await.map_err(|e| e.to_string())?;
    if filter
        .status
        .as_deref()
        .is_some_and(report::is_ledger_status)
    {
        let objects = report::unfinished(&*client, &filter)
            .await
            .map_err(|e| e.to_string())?;
        return if args.json {
            print_json(serde_json::to_string_pretty(&objects))
        } else {
            print_objects(&objects)
        };
    }
    let loads = report::loads(&*client, &filter)
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        print_json(serde_json::to_string_pretty(&loads))
    } else {
        print_loads(&loads)
    }
}

fn print_objects(list: &ObjectList) -> Result<(), String> {
    if list.objects.is_empty() {
        say!("no objects match");
        return Ok(());
    }
    let mut table = Table::new(&[
        Column::number("OBJECT"),
        Column::text("TENANT"),
        Column::text("DATASET"),
        Column::text("KEY").max_keep_end(40),
        Column::text("STATUS"),
        Column::number("ATTEMPTS"),
        Column::number("DIED"),
        Column::number("AGE S"),
        Column::text("ERROR").max(60),
    ]);
    for o in &list.objects {
        table.row([
            o.object_id.to_string(),
            or_dash(o.tenant.as_deref()),
            or_dash(o.dataset.as_deref()),
            o.key.clone(),
            o.status.clone(),
            o.attempts.to_string(),
            o.deaths.to_string(),
            o.age_seconds.to_string(),
            or_dash(o.error.as_deref()),
        ]);
    }
    print_table(&table)
}

fn print_loads(list: &LoadList) -> Result<(), String> {
    if list.loads.is_empty() {
        say!("no loads match");
        return Ok(());
    }
    let mut table = Table::new(&[
        Column::number("ID"),
        Column::text("TENANT"),
        Column::text("DATASET"),
        Column::text("SOURCE").max_keep_end(40),
        Column::text("STATUS"),
        Column::number("RECORDS"),
        Column::number("INSERTED"),
        Column::number("UPDATED"),
        Column::number("UNCHANGED"),
        Column::number("REJECTED"),
        Column::number("VERSION"),
        Column::number("SCORE"),
        Column::number("MS"),
        Column::text("ERROR").max(60),
    ]);
    for l in &list.loads {
        table.row([
            l.load_id.to_string(),
            l.tenant.clone(),
            l.dataset.clone(),
            l.source_key.clone(),
            l.status.clone(),
            l.records.to_string(),
            l.inserted.to_string(),
            l.updated.to_string(),
            l.unchanged.to_string(),
            l.rejected.to_string(),
            or_dash(l.schema_version),
            score(l.quality_score),
            or_dash(l.duration_ms),
            or_dash(l.error.as_deref()),
        ]);
    }
    print_table(&table)
}

pub async fn rejects(args: RejectsArgs) -> Result<(), String> {
    let db = reader();
    let client = db.client().await.map_err(|e| e.to_string())?;
    let list = report::rejects(&*client, args.load_id, i64::from(args.last))
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        print_json(serde_json::to_string_pretty(&list))
    } else {
        print_rejects(&list)
    }
}

fn print_rejects(list: &RejectList) -> Result<(), String> {
    let shown = list.rejects.len();
    let count = match i64::try_from(shown) {
        Ok(n) if n < list.total => format!("{shown} of {} rejects", list.total),
        _ => format!("{} rejects", list.total),
    };
    say!(
        "load {}  {}/{}  {}  {}  {count}",
        list.load_id,
        list.tenant,
        list.dataset,
        list.status,
        list.source_key
    );
    if shown == 0 {
        return Ok(());
    }
    let mut table = Table::new(&[
        Column::number("LINE"),
        Column::text("REASON").max(80),
        Column::text("RAW").max(60),
    ]);
    for r in &list.rejects {
        table.row([or_dash(r.line), r.reason.clone(), or_dash(r.raw.as_deref())]);
    }
    print_table(&table)
}

/// The database an operator command reads: never migrated, and named on stderr when
/// DATABASE_URL does not name it.
pub fn reader() -> Db {
    let db = Db::from_env(None).read_only();
    if std::env::var_os("DATABASE_URL").is_none() {
        eprintln!("reading {} (DATABASE_URL is not set)", db.describe());
    }
    db
}
