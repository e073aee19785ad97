//! `bronze`: the local runner, file tools and operator commands, thin over the library.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bronze::contract::{compile_json_schema, Contract};
use bronze::db::Db;
use bronze::dispatch::Dispatcher;
use bronze::format::{
    self, Certainty, Detected, Encoding, Format, ReadError, ReadSettings, SourceRead,
};
use bronze::infer::Inferrer;
use bronze::keys::Destination;
use bronze::limits::Limits;
use bronze::load::{DeadLetters, Loader};
use bronze::metrics::{Metrics, Registry};
use bronze::pipeline::{self, LoadError, Options, Reopen};
use bronze::policy::OnError;
use bronze::runner::{self, Settings};
use bronze::serve::Health;
use bronze::store::{self, DatasetSettings, Lineage};
use bronze::typed::{self, Storage};
use bronze::{aws, logging};
use clap::{Args, Parser, Subcommand};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// Prints a line to stdout; a closed pipe (`bronze infer x | head`) is not an error,
/// and nothing here panics on a failed write as `println!` would.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, $($arg)*) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(format!("writing stdout: {e}"));
            }
            _ => {}
        }
    }};
}

// After `say!`, which they use.
mod operate;
mod ops;
mod table;

#[derive(Parser)]
#[command(
    name = "bronze",
    about = "S3 files into versioned PostgreSQL bronze tables",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a file's records as NDJSON, one canonical JSON object per line.
    Parse {
        file: PathBuf,
        /// Read as this format (csv, tsv, ndjson, json) whatever the name says.
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// Read in this encoding (utf-8, windows-1252, shift_jis, …) whatever the
        /// bytes suggest.
        #[arg(long, value_parser = parse_encoding)]
        encoding: Option<Encoding>,
    },
    /// Describe a file's columns (types, formats, semantics, nulls, ranges) as JSON.
    Infer {
        file: PathBuf,
        /// Read as this format (csv, tsv, ndjson, json) whatever the name says.
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// Read in this encoding whatever the bytes suggest.
        #[arg(long, value_parser = parse_encoding)]
        encoding: Option<Encoding>,
    },
    /// Load a local file into DATABASE_URL through the same pipeline, without AWS.
    Ingest {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        dataset: String,
        /// Skip inference, the schema registry, validation and quality: only to
        /// measure what they cost.
        #[arg(long, hide = true)]
        no_checks: bool,
    },
    /// Apply the database migrations to DATABASE_URL: a deploy step, run as the owner
    /// role (the functions only check that the database is migrated).
    Migrate {
        /// Make this existing role a loader: what the functions connect as, with only
        /// what loading needs (docs/security.md). Idempotent: give it on every deploy.
        #[arg(long, value_name = "ROLE")]
        loader: Option<String>,
    },
    /// Per-dataset settings (business key, snapshot semantics).
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Create the bucket, its notification and the queues (idempotent); print them.
    Setup(RunnerArgs),
    /// Play Lambda's part: set up, then poll the queues and call the handlers.
    Run {
        #[command(flatten)]
        runner: RunnerArgs,
        /// Stop after this many seconds without messages (default: run until killed).
        #[arg(long, value_name = "SECONDS")]
        until_idle: Option<u64>,
        /// Serve Prometheus metrics at /metrics and a health check at /health here.
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Serve the records API (the api Lambda's router) over HTTP; tenants' tokens
    /// come from BRONZE_API_TOKENS (`tenant=token,…`).
    Serve {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The landing bucket that `POST …/records` and uploads write to.
        #[arg(long, default_value = "bronze-landing")]
        bucket: String,
        /// Database connections shared by concurrent requests.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// A dataset's schema versions: one version's columns, the history, what changed.
    #[command(subcommand)]
    Schema(ops::SchemaCommand),
    /// The quality of a dataset's recent loads, and their weakest columns.
    Quality(ops::QualityArgs),
    /// Recent loads, by status, tenant or dataset.
    Loads(ops::LoadsArgs),
    /// The records a load refused, with their line and reason.
    Rejects(ops::RejectsArgs),
    /// What needs a human: the ledger's backlog, each dataset's last load, recent
    /// rejects, queue depths and dead letters; --check exits 1 when something does.
    Status(operate::StatusArgs),
    /// Load the objects of a bucket the ledger does not know (existing files, lost
    /// notifications), through the same dispatch as a notification. Run twice, the
    /// second run queues nothing.
    Backfill(operate::BackfillArgs),
    /// Move dead-lettered messages back to their queue once the fault is mended.
    Replay(operate::ReplayArgs),
    /// Put objects back through load (after a contract was relaxed, a fault fixed).
    Reload(operate::ReloadArgs),
    /// Tenants' reader roles: each sees its schema and its own rows, nothing else.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// A dataset's typed relation (`<dataset>_typed`): view or kept table.
    #[command(subcommand)]
    Typed(TypedCommand),
}

#[derive(Subcommand)]
enum TypedCommand {
    /// Make the typed relation again from the current rows and schema version, with
    /// its indexes: a structured table left behind by a breaking change catches up.
    Rebuild { tenant: String, dataset: String },
}

#[derive(Subcommand)]
enum DatasetsCommand {
    /// Set a dataset's business key (and whether each file is a complete snapshot).
    Set {
        tenant: String,
        dataset: String,
        /// Key columns, comma-separated; none means the record hash is the key.
        #[arg(long, value_delimiter = ',')]
        key: Vec<String>,
        /// Keys absent from a new file get a `delete` version.
        #[arg(long)]
        snapshot: bool,
        /// Read every file of the dataset as this format (csv, tsv, ndjson, json).
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// What a file whose schema changed may do: evolve (record the new version),
        /// freeze (reject breaking changes), discard_row (reject records that do not
        /// fit the current version).
        #[arg(long, value_parser = parse_contract, default_value = "evolve")]
        contract: Contract,
        /// A JSON Schema (Draft 2020-12) every record must pass.
        #[arg(long, value_name = "FILE")]
        json_schema: Option<PathBuf>,
        /// What a file with rejected records does: continue (load the rest),
        /// skip_file (any reject skips it), skip_file:N (N or more), skip_file:P%
        /// (more than P% of its lines or records).
        #[arg(long, value_parser = parse_on_error, default_value = "skip_file:10%")]
        on_error: OnError,
        /// Read every file of the dataset in this encoding (utf-8, windows-1252,
        /// iso-8859-2, shift_jis, gbk, euc-kr, …) whatever detection says.
        #[arg(long, value_parser = parse_encoding)]
        encoding: Option<Encoding>,
        /// Where `<dataset>_typed` lives: jsonb (a view casting the payloads) or
        /// structured (a table of the current rows, kept by every load).
        #[arg(long, value_parser = parse_storage, default_value = "jsonb")]
        storage: Storage,
        /// Typed columns to index, comma-separated, one index each (the key always is).
        #[arg(long, value_delimiter = ',')]
        index: Vec<String>,
        /// Indexes for the records API over the bronze table: `payload` (GIN: eq
        /// filters as containment) and/or field names (their typed values: eq, ranges,
        /// order).
        #[arg(long, value_delimiter = ',')]
        api_index: Vec<String>,
    },
    /// Show a dataset's settings.
    Show { tenant: String, dataset: String },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Make the tenant's reader role `bronze_reader_<tenant>` (NOLOGIN) and its grants.
    Create { tenant: String },
    /// Let a login role read the tenant's data.
    Grant { tenant: String, role: String },
    /// Print the landing bucket's policy: the template's statements, and who may write
    /// each tenant's prefixes, from the rules dispatch applies (BRONZE_TENANT_WRITERS,
    /// BRONZE_TENANTS). For `aws s3api put-bucket-policy` with
    /// ManageLandingBucketPolicy=false.
    BucketPolicy {
        #[arg(long)]
        bucket: String,
    },
    /// Whether a tenant's first load makes its reader role (the role that migrated
    /// needs CREATEROLE then).
    AutoReaders {
        #[arg(value_parser = ["on", "off"])]
        switch: String,
    },
}

#[derive(Args)]
struct RunnerArgs {
    #[arg(long, default_value = "bronze-landing")]
    bucket: String,
    #[arg(long, default_value = "bronze")]
    queue_prefix: String,
    #[arg(long, default_value_t = 30)]
    visibility_timeout: u32,
}

impl RunnerArgs {
    fn settings(&self) -> Settings {
        Settings {
            bucket: self.bucket.clone(),
            queue_prefix: self.queue_prefix.clone(),
            visibility_timeout: self.visibility_timeout,
            ..Settings::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    logging::init_cli();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse {
            file,
            format,
            encoding,
        } => read_settings(format, encoding).and_then(|read| parse(&file, &read)),
        Command::Infer {
            file,
            format,
            encoding,
        } => read_settings(format, encoding).and_then(|read| infer(&file, &read)),
        Command::Ingest {
            file,
            tenant,
            dataset,
            no_checks,
        } => match Limits::from_env() {
            Ok(limits) => {
                let options = Options {
                    checks: !no_checks,
                    limits,
                };
                ingest(&file, &tenant, &dataset, options).await
            }
            Err(e) => Err(e.to_string()),
        },
        Command::Migrate { loader } => migrate_db(loader).await,
        Command::Datasets(command) => datasets(command).await,
        Command::Setup(args) => setup(&args).await,
        Command::Run {
            runner,
            until_idle,
            metrics_addr,
        } => run(&runner, until_idle, metrics_addr).await,
        Command::Serve {
            addr,
            bucket,
            connections,
        } => serve(addr, bucket, connections).await,
        Command::Schema(command) => ops::schema(command).await,
        Command::Quality(args) => ops::quality(args).await,
        Command::Loads(args) => ops::loads(args).await,
        Command::Rejects(args) => ops::rejects(args).await,
        Command::Status(args) => operate::status(args).await,
        Command::Backfill(args) => operate::backfill(args).await,
        Command::Replay(args) => operate::replay(args).await,
        Command::Reload(args) => operate::reload(args).await,
        Command::Tenants(command) => tenants(command).await,
        Command::Typed(TypedCommand::Rebuild { tenant, dataset }) => {
            typed_rebuild(&tenant, &dataset).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// `FILE:LINE: reason`, the shape editors and CI annotations understand.
fn located(file: &Path, line: Option<u64>, reason: &str) -> String {
    match line {
        Some(line) => format!("{}:{line}: {reason}", file.display()),
        None => format!("{}: {reason}", file.display()),
    }
}

fn read_error(file: &Path, e: ReadError) -> String {
    match e {
        ReadError::Malformed { line, reason } | ReadError::Record { line, reason, .. } => {
            located(file, Some(line), &reason)
        }
        other => located(file, None, &other.to_string()),
    }
}

fn open(file: &Path) -> Result<Box<dyn io::Read + Send>, String> {
    let handle = std::fs::File::open(file).map_err(|e| located(file, None, &e.to_string()))?;
    Ok(Box::new(SourceRead(handle)))
}

/// Bytes read of `file`, their rate and the time left, on stderr while it is a
/// terminal; nothing when it is not (a pipe, a log, CI).
fn progress(file: &Path) -> indicatif::ProgressBar {
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(
        "{bytes}/{total_bytes} read, {bytes_per_sec}, {eta} left",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// A file on disk, opened again for a load's second read.
struct LocalFile(PathBuf);

impl Reopen for LocalFile {
    fn reopen(&self) -> BoxFuture<'_, Result<Box<dyn io::Read + Send>, LoadError>> {
        let opened = open(&self.0).map_err(LoadError::Transient);
        Box::pin(std::future::ready(opened))
    }
}

fn parse_contract(name: &str) -> Result<Contract, String> {
    Contract::parse(name).ok_or_else(|| format!("{name:?}: expected evolve, freeze or discard_row"))
}

fn read_json_schema(file: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let schema: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    compile_json_schema(&schema).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(schema)
}

fn parse_encoding(label: &str) -> Result<Encoding, String> {
    Encoding::parse(label).ok_or_else(|| format!("unknown encoding {label:?}: a WHATWG label such as utf-8, windows-1252, iso-8859-2, shift_jis, gbk or euc-kr"))
}

fn parse_storage(name: &str) -> Result<Storage, String> {
    Storage::parse(name).ok_or_else(|| format!("{name:?}: expected jsonb or structured"))
}

fn parse_on_error(text: &str) -> Result<OnError, String> {
    OnError::parse(text).ok_or_else(|| {
        format!("{text:?}: expected continue, skip_file, skip_file:N or skip_file:P% (0 < P < 100)")
    })
}

/// How `parse` and `infer` read: the pins given, within the process's bounds.
fn read_settings(
    format: Option<Format>,
    encoding: Option<Encoding>,
) -> Result<ReadSettings, String> {
    let limits = Limits::from_env().map_err(|e| e.to_string())?;
    Ok(ReadSettings {
        format,
        encoding,
        limits,
    })
}

/// Says on stderr when the file's encoding is a guess the detector is unsure of: a
/// load refuses such a file unless its encoding is pinned.
fn warn_unsure(file: &Path, detected: &Detected) {
    if detected.certainty == Certainty::Unsure {
        eprintln!(
            "{}: warning: the encoding is a guess ({}) the detector is unsure of; --encoding pins it",
            file.display(),
            detected.encoding.name()
        );
    }
}

fn parse_format(name: &str) -> Result<Format, String> {
    Format::parse(name).ok_or_else(|| format!("unknown format {name:?}: csv, tsv, ndjson or json"))
}

/// Prints every good record; bad records are reported on stderr as `FILE:LINE: reason`
/// and make the exit status 1, without hiding the records after them.
fn parse(file: &Path, read: &ReadSettings) -> Result<(), String> {
    let name = file.to_string_lossy();
    let (mut records, detected) =
        format::open(open(file)?, &name, read).map_err(|e| read_error(file, e))?;
    warn_unsure(file, &detected);
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut json = Vec::with_capacity(4096);
    let write_failed = |e: io::Error| format!("writing stdout: {e}");
    let mut bad = 0u64;
    loop {
        match records.next_into(&mut json) {
            Ok(Some(_)) => {
                json.push(b'\n');
                out.write_all(&json).map_err(write_failed)?;
            }
            Ok(None) => break,
            Err(e) if e.is_record() => {
                bad += 1;
                out.flush().map_err(write_failed)?;
                eprintln!("{}", read_error(file, e));
            }
            Err(e) => {
                out.flush().map_err(write_failed)?;
                return Err(read_error(file, e));
            }
        }
    }
    out.flush().map_err(write_failed)?;
    match bad {
        0 => Ok(()),
        n => Err(format!("{}: {n} bad record(s)", file.display())),
    }
}

/// Reads the whole file once and prints what inference found; bad records are
/// counted in the report, not fatal. An unreadable file exits 1 with `FILE:LINE`.
fn infer(file: &Path, read: &ReadSettings) -> Result<(), String> {
    let name = file.to_string_lossy();
    let (mut records, detected) =
        format::open(open(file)?, &name, read).map_err(|e| read_error(file, e))?;
    warn_unsure(file, &detected);
    let mut inferrer = Inferrer::for_records(&records);
    let mut json = Vec::with_capacity(4096);
    loop {
        match records.next_for_inference(&mut json) {
            Ok(Some(line)) => inferrer.observe_next(&records, line, &json),
            Ok(None) => break,
            Err(ReadError::Record { line, .. }) => inferrer.rejected(line),
            Err(e) => return Err(read_error(file, e)),
        }
    }
    let report = inferrer.report(&detected);
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    say!("{text}");
    Ok(())
}

async fn ingest(file: &Path, tenant: &str, dataset: &str, options: Options) -> Result<(), String> {
    let dest = Destination::new(tenant, dataset).map_err(|e| e.to_string())?;
    let progress = progress(file);
    let source: Box<dyn io::Read + Send> = Box::new(progress.wrap_read(open(file)?));
    let modified = std::fs::metadata(file).and_then(|m| m.modified());
    let lineage = Lineage {
        bucket: None,
        key: file.to_string_lossy().into_owned(),
        version_id: None,
        etag: None,
        source_ts: modified.unwrap_or_else(|_| std::time::SystemTime::now()),
    };
    let db = Db::from_env(None);
    let mut client = db.client().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    // A pipe (`<(zcat …)`, /dev/stdin) cannot be read twice.
    let regular = std::fs::metadata(file).is_ok_and(|m| m.is_file());
    let local = LocalFile(file.to_path_buf());
    let again = regular.then_some(&local as &dyn Reopen);
    let result = pipeline::load_with(&tx, source, again, &dest, &lineage, None, options).await;
    progress.finish_and_clear();
    match result {
        Ok(loaded) => {
            tx.commit().await.map_err(|e| e.to_string())?;
            let c = &loaded.counts;
            say!(
                "{}",
                serde_json::json!({
                    "load_id": loaded.load_id, "tenant": dest.tenant.as_str(),
                    "dataset": dest.dataset.as_str(), "format": loaded.detected.format.name(),
                    "gzip": loaded.detected.gzip, "records": c.records_in,
                    "inserted": c.inserted, "updated": c.updated, "unchanged": c.unchanged,
                    "deleted": c.deleted, "rejected": c.rejected, "bytes": c.bytes, "duration_ms": loaded.duration_ms,
                    "schema_version": loaded.schema_version, "new_version": loaded.new_version,
                    "quality_score": loaded.quality_score,
                })
            );
            Ok(())
        }
        Err(LoadError::Rejected { line, reason }) => {
            drop(tx);
            let tx = client.transaction().await.map_err(|e| e.to_string())?;
            pipeline::record_rejection(&tx, &dest, &lineage, None, line, &reason)
                .await
                .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
            Err(located(file, line, &reason))
        }
        Err(e) => Err(located(file, None, &e.to_string())),
    }
}

async fn tenants(command: TenantsCommand) -> Result<(), String> {
    let db = Db::from_env(None);
    let name = |tenant: &str| {
        Destination::new(tenant, "dataset")
            .map(|d| d.tenant)
            .map_err(|e| e.to_string())
    };
    match command {
        TenantsCommand::Create { tenant } => {
            let client = db.client().await.map_err(|e| e.to_string())?;
            let role = bronze::tenants::create(&*client, &name(&tenant)?)
                .await
                .map_err(|e| bronze::aws::describe(&e))?;
            say!("{role}");
        }
        TenantsCommand::Grant { tenant, role } => {
            let client = db.client().await.map_err(|e| e.to_string())?;
            bronze::tenants::grant(&*client, &name(&tenant)?, &role)
                .await
                .map_err(|e| bronze::aws::describe(&e))?;
            say!("{role} may read tenant {tenant}");
        }
        TenantsCommand::BucketPolicy { bucket } => {
            let admission = bronze::admission::Admission::from_env().map_err(|e| e.to_string())?;
            let policy = bronze::bucket_policy::bucket_policy(&admission, &bucket);
            writeln!(std::io::stdout(), "{policy:#}").map_err(|e| e.to_string())?;
        }
        TenantsCommand::AutoReaders { switch } => {
            let client = db.client().await.map_err(|e| e.to_string())?;
            let on = switch == "on";
            bronze::tenants::set_auto_readers(&*client, on)
                .await
                .map_err(|e| bronze::aws::describe(&e))?;
            say!(
                "a tenant's first load {} its reader role",
                if on { "makes" } else { "does not make" }
            );
        }
    }
    Ok(())
}

async fn typed_rebuild(tenant: &str, dataset: &str) -> Result<(), String> {
    let dest = Destination::new(tenant, dataset).map_err(|e| e.to_string())?;
    let db = Db::from_env(None);
    let mut client = db.client().await.map_err(|e| e.to_string())?;
    let applied = typed::rebuild(&mut client, &dest)
        .await
        .map_err(|e| e.to_string())?;
    report_typed(&applied);
    match applied.note {
        Some(note) => Err(note),
        None => Ok(()),
    }
}

/// Says on stderr what a settings change or a rebuild did to the typed relation.
fn report_typed(applied: &typed::Applied) {
    if applied.remade {
        eprintln!("typed relation made from the current rows");
    }
    if applied.concurrent_indexes > 0 {
        eprintln!(
            "{} index(es) built CONCURRENTLY (large table)",
            applied.concurrent_indexes
        );
    }
    if let Some(note) = &applied.note {
        eprintln!("{note}");
    }
}

async fn migrate_db(loader: Option<String>) -> Result<(), String> {
    // `Db::client` applies the migrations on connect.
    let db = Db::from_env(None);
    let mut client = db.client().await.map_err(|e| e.to_string())?;
    let version = bronze::migrate::applied_version(&client)
        .await
        .map_err(|e| bronze::aws::describe(&e))?;
    say!("database at migration {version}");
    if let Some(role) = loader {
        bronze::roles::grant_loader(&mut client, &role)
            .await
            .map_err(|e| e.to_string())?;
        say!("{role} may load (and nothing more)");
    }
    Ok(())
}

async fn datasets(command: DatasetsCommand) -> Result<(), String> {
    let db = Db::from_env(None);
    let mut client = db.client().await.map_err(|e| e.to_string())?;
    match command {
        DatasetsCommand::Set {
            tenant,
            dataset,
            key,
            snapshot,
            format,
            contract,
            json_schema,
            on_error,
            encoding,
            storage,
            index,
            api_index,
        } => {
            let dest = Destination::new(&tenant, &dataset).map_err(|e| e.to_string())?;
            let key_columns: Vec<String> = key.into_iter().filter(|k| !k.is_empty()).collect();
            let json_schema = json_schema.as_deref().map(read_json_schema).transpose()?;
            let settings = DatasetSettings {
                key_columns,
                snapshot,
                format,
                contract,
                json_schema,
                on_error,
                encoding,
                storage,
                index_columns: index.into_iter().filter(|c| !c.is_empty()).collect(),
            };
            store::set_dataset(&mut client, &dest, &settings)
                .await
                .map_err(|e| e.to_string())?;
            let applied = typed::apply(&mut client, &dest)
                .await
                .map_err(|e| e.to_string())?;
            report_typed(&applied);
            let api_index: Vec<String> = api_index.into_iter().filter(|i| !i.is_empty()).collect();
            let built = store::set_api_indexes(&*client, &dest, &api_index)
                .await
                .map_err(|e| e.to_string())?;
            print_settings(&dest, &settings)?;
            if !api_index.is_empty() {
                say!("api indexes  {}", api_index.join(","));
                if !built {
                    say!("             (no table yet: run this again after the first load to build them)");
                }
            }
        }
        DatasetsCommand::Show { tenant, dataset } => {
            let dest = Destination::new(&tenant, &dataset).map_err(|e| e.to_string())?;
            let settings = store::dataset_settings(&*client, &dest)
                .await
                .map_err(|e| e.to_string())?;
            print_settings(&dest, &settings)?;
        }
    }
    Ok(())
}

fn print_settings(dest: &Destination, settings: &DatasetSettings) -> Result<(), String> {
    say!(
        "{}",
        serde_json::json!({
            "tenant": dest.tenant.as_str(), "dataset": dest.dataset.as_str(),
            "key": settings.key_columns, "snapshot": settings.snapshot,
            "format": settings.format.map(Format::name), "contract": settings.contract.name(),
            "json_schema": settings.json_schema, "on_error": settings.on_error.to_string(),
            "encoding": settings.encoding.map(Encoding::name),
            "storage": settings.storage.name(), "index": settings.index_columns,
        })
    );
    Ok(())
}

async fn setup(args: &RunnerArgs) -> Result<(), String> {
    let config = aws::sdk_config().await;
    let queues = runner::provision(&aws::s3(&config), &aws::sqs(&config), &args.settings())
        .await
        .map_err(|e| e.to_string())?;
    say!("bucket       s3://{}", args.bucket);
    say!("landing      {}", queues.landing.url);
    say!("load         {}", queues.load.url);
    say!("landing_dlq  {}", queues.landing_dlq.url);
    say!("load_dlq     {}", queues.load_dlq.url);
    Ok(())
}

async fn serve(
    addr: std::net::SocketAddr,
    bucket: String,
    connections: usize,
) -> Result<(), String> {
    let config = aws::sdk_config().await;
    let api = bronze::api::Api::from_env(&config, None, bucket, connections)
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--addr {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "Records API listening.");
    say!("records API on http://{addr}/v1 (OpenAPI: http://{addr}/v1/openapi.json)");
    bronze::api::serve(listener, Arc::new(api))
        .await
        .map_err(|e| e.to_string())
}

async fn run(
    args: &RunnerArgs,
    until_idle: Option<u64>,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<(), String> {
    let config = aws::sdk_config().await;
    let (s3, sqs) = (aws::s3(&config), aws::sqs(&config));
    let queues = runner::provision(&s3, &sqs, &args.settings())
        .await
        .map_err(|e| e.to_string())?;
    let registry = match metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("--metrics-addr {addr}: {e}"))?;
            let registry = Arc::new(Registry::default());
            let health = Arc::new(Health {
                db: Db::from_env(None),
                sqs: sqs.clone(),
                queues: queues.clone(),
            });
            tokio::spawn(bronze::serve::serve(
                listener,
                Arc::clone(&registry),
                health,
            ));
            Some(registry)
        }
        None => None,
    };
    let metrics = || {
        registry
            .clone()
            .map_or_else(Metrics::default, Metrics::prometheus)
    };
    let dispatcher = Dispatcher {
        s3: s3.clone(),
        sqs: sqs.clone(),
        load_queue_url: queues.load.url.clone(),
        db: Db::from_env(None),
        metrics: metrics(),
        admission: bronze::admission::Admission::from_env().map_err(|e| e.to_string())?,
    };
    let loader = Loader {
        s3,
        db: Db::from_env(None),
        limits: Limits::from_env().map_err(|e| e.to_string())?,
        dead_letters: Some(DeadLetters {
            sqs: sqs.clone(),
            url: queues.load_dlq.url.clone(),
        }),
        metrics: metrics(),
        unnoted: Default::default(),
    };
    tracing::info!(bucket = %args.bucket, landing = %queues.landing.url, load = %queues.load.url, "Runner polling.");
    runner::run(
        &sqs,
        &queues,
        &dispatcher,
        &loader,
        until_idle.map(Duration::from_secs),
    )
    .await
    .map_err(|e| e.to_string())
}
