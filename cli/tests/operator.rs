//! The operator commands (`schema`, `quality`, `loads`, `rejects`), run as the real
//! binary over loads the real `bronze ingest` made in a database of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bronze_tests::{Result, TestDb};
use serde_json::Value;

fn bronze(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bronze"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("the bronze binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = bronze(db, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Runs a `--json` command that must succeed and parses its one document.
fn json(db: &TestDb, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let stdout = ok(db, &args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

/// Runs a command that must fail with exit status 1 and returns its stderr.
fn fails(db: &TestDb, args: &[&str]) -> String {
    let out = bronze(db, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

fn file(test: &str, name: &str, content: &str) -> PathBuf {
    // Under target/: a scratch place cargo owns, not left behind in /tmp.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bronze-operator-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn ingest(db: &TestDb, path: &Path, dataset: &str) -> Output {
    let path = path.to_str().unwrap();
    bronze(
        db,
        &["ingest", path, "--tenant", "acme", "--dataset", dataset],
    )
}

/// What [`seed`] made: two good loads and a rejected one.
struct Seed {
    first: i64,
    second: i64,
    rejected: i64,
}

/// GIVEN acme/orders with two schema versions (the second file drops `name`, adds a
/// partly empty `email` and has one ragged row), then under the freeze contract a third
/// file that drops `email`, rejected whole.
async fn seed(db: &TestDb, test: &str) -> Result<Seed> {
    let files = [
        (
            "orders_1.csv",
            "id,name,amount\n1,Ada,10\n2,Grace,20\n3,Linus,30\n",
        ),
        (
            "orders_2.csv",
            "id,amount,email\n1,10,ada@example.com\n2,25,grace@example.com\n3,30\n4,40,\n",
        ),
        ("orders_3.csv", "id,amount\n5,50\n"),
    ];
    let paths: Vec<PathBuf> = files.iter().map(|(n, c)| file(test, n, c)).collect();
    // The ragged row is a quarter of its small file: load the rest.
    ok(
        db,
        &[
            "datasets",
            "set",
            "acme",
            "orders",
            "--on-error",
            "continue",
        ],
    );
    let mut ids = Vec::new();
    for path in &paths[..2] {
        let out = ingest(db, path, "orders");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let counts: Value = serde_json::from_slice(&out.stdout)?;
        ids.push(counts["load_id"].as_i64().expect("a load id"));
    }
    ok(
        db,
        &[
            "datasets",
            "set",
            "acme",
            "orders",
            "--contract",
            "freeze",
            "--on-error",
            "continue",
        ],
    );
    assert_eq!(ingest(db, &paths[2], "orders").status.code(), Some(1));
    let rejected: i64 = db
        .pg
        .query_one("SELECT id FROM bronze.loads WHERE status = 'rejected'", &[])
        .await?
        .get(0);
    Ok(Seed {
        first: ids[0],
        second: ids[1],
        rejected,
    })
}

fn kinds(changes: &Value) -> Vec<(String, String, bool)> {
    let list = changes.as_array().expect("a list of changes");
    list.iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("change"), s("column"), c["breaking"] == true)
        })
        .collect()
}

fn change(kind: &str, column: &str, breaking: bool) -> (String, String, bool) {
    (kind.to_owned(), column.to_owned(), breaking)
}

#[tokio::test]
async fn schema_history_show_and_diff_describe_the_versions() -> Result {
    let db = TestDb::new().await?;
    let seed = seed(&db, "schema").await?;

    let history = json(&db, &["schema", "history", "acme", "orders"]);
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["load_id"], seed.first);
    assert_eq!(kinds(&versions[0]["changes"]), []);
    assert_eq!(versions[1]["load_id"], seed.second);
    assert_eq!(versions[1]["breaking"], true);
    let expected = [
        change("removed", "name", true),
        change("added", "email", false),
    ];
    assert_eq!(kinds(&versions[1]["changes"]), expected);
    assert!(versions[1]["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let diff = json(&db, &["schema", "diff", "acme", "orders"]);
    assert_eq!(
        (diff["from"].as_i64(), diff["to"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(kinds(&diff["changes"]), expected);
    let back = json(&db, &["schema", "diff", "acme", "orders", "2", "1"]);
    let reversed = [
        change("removed", "email", true),
        change("added", "name", false),
    ];
    assert_eq!(kinds(&back["changes"]), reversed);

    let current = json(&db, &["schema", "show", "acme", "orders"]);
    assert_eq!(current["version"], 2);
    let columns = current["columns"].as_array().expect("columns");
    let names: Vec<&str> = columns.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["id", "amount", "email"]);
    assert_eq!(columns[0]["type"], "integer");
    assert_eq!(
        (
            columns[2]["nullable"].as_bool(),
            columns[2]["semantic"].as_str()
        ),
        (Some(true), Some("email"))
    );
    let first = json(&db, &["schema", "show", "acme", "orders", "--version", "1"]);
    assert_eq!(first["columns"][1]["name"], "name");

    let table = ok(&db, &["schema", "history", "acme", "orders"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("VERSION  CREATED"), "{table}");
    assert!(lines[0].contains("BREAKING  SUMMARY"), "{table}");
    assert!(lines[2].contains("yes"), "{table}");
    assert!(
        lines[2].ends_with("column `name` removed; column `email` added"),
        "{table}"
    );
    let table = ok(&db, &["schema", "show", "acme", "orders"]);
    assert!(
        table.starts_with("acme/orders  version 2  fingerprint "),
        "{table}"
    );
    assert!(
        table.contains("NAME    TYPE     NULLABLE  SEMANTIC  FORMAT"),
        "{table}"
    );
    assert!(
        table.contains("email   string   yes       email     -"),
        "{table}"
    );
    let table = ok(&db, &["schema", "diff", "acme", "orders"]);
    assert!(
        table.starts_with("acme/orders  version 1 → 2  breaking\n"),
        "{table}"
    );
    assert!(table.contains("removed  name    -     -   yes"), "{table}");
    db.finish().await
}

#[tokio::test]
async fn loads_and_rejects_show_what_was_refused() -> Result {
    let db = TestDb::new().await?;
    let seed = seed(&db, "loads").await?;

    let all = json(&db, &["loads"]);
    let ids: Vec<i64> = all["loads"]
        .as_array()
        .expect("loads")
        .iter()
        .filter_map(|l| l["load_id"].as_i64())
        .collect();
    assert_eq!(
        ids,
        [seed.rejected, seed.second, seed.first],
        "newest first"
    );
    let second = &all["loads"][1];
    assert_eq!(
        (
            second["records"].as_i64(),
            second["inserted"].as_i64(),
            second["rejected"].as_i64()
        ),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(second["schema_version"], 2);

    let refused = json(&db, &["loads", "--status", "rejected"]);
    let refused = refused["loads"].as_array().expect("loads");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["load_id"], seed.rejected);
    let error = refused[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("breaking schema change under the freeze contract"),
        "{error}"
    );
    assert!(
        error.ends_with("column `email` removed"),
        "full text in JSON: {error}"
    );
    let newest = json(
        &db,
        &[
            "loads",
            "--tenant",
            "ACME",
            "--dataset",
            "orders",
            "--last",
            "1",
        ],
    );
    assert_eq!(newest["loads"].as_array().map(Vec::len), Some(1));
    let none = json(&db, &["loads", "--dataset", "other"]);
    assert_eq!(none["loads"], serde_json::json!([]));

    let rejects = json(&db, &["rejects", &seed.second.to_string()]);
    assert_eq!(
        (rejects["total"].as_i64(), rejects["status"].as_str()),
        (Some(1), Some("loaded"))
    );
    let reject = &rejects["rejects"][0];
    assert_eq!(reject["line"], 4);
    assert_eq!(
        reject["reason"],
        "expected 3 fields as in the header, found 2"
    );
    assert_eq!(reject["raw"], "3,30");
    let whole = json(&db, &["rejects", &seed.rejected.to_string()]);
    assert_eq!(whole["rejects"][0]["line"], Value::Null);
    assert!(whole["rejects"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("freeze")));
    let clean = json(&db, &["rejects", &seed.first.to_string()]);
    assert_eq!(
        (
            clean["total"].as_i64(),
            clean["rejects"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );

    let table = ok(&db, &["loads", "--status", "rejected"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("ID  TENANT  DATASET  SOURCE"),
        "{table}"
    );
    assert!(lines[0].ends_with("VERSION  SCORE  MS  ERROR"), "{table}");
    let row = format!("{:>2}  acme    orders   ", seed.rejected);
    assert!(lines[1].starts_with(&row), "{table}");
    assert!(lines[1].contains("orders_3.csv  rejected"), "{table}");
    assert!(lines[1].ends_with('…'), "long errors are cut: {table}");
    let table = ok(&db, &["rejects", &seed.second.to_string()]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with(&format!("load {}  acme/orders  loaded  ", seed.second)),
        "{table}"
    );
    assert!(lines[0].ends_with("1 rejects"), "{table}");
    assert!(lines[1].starts_with("LINE  REASON"), "{table}");
    assert!(
        lines[2].starts_with("   4  expected 3 fields as in the header, found 2  3,30"),
        "{table}"
    );
    db.finish().await
}

#[tokio::test]
async fn quality_scores_each_load_and_its_columns() -> Result {
    let db = TestDb::new().await?;
    let seed = seed(&db, "quality").await?;

    let report = json(&db, &["quality", "acme", "orders"]);
    let loads = report["loads"].as_array().expect("loads");
    let ids: Vec<i64> = loads.iter().filter_map(|l| l["load_id"].as_i64()).collect();
    assert_eq!(ids, [seed.second, seed.first], "loaded only, newest first");
    for load in loads {
        let score = load["score"].as_f64().expect("a score");
        assert!((0.0..=1.0).contains(&score), "{load}");
    }
    assert_eq!(loads[1]["score"], 1.0, "the first file is complete");
    let columns = loads[0]["columns"].as_array().expect("columns");
    let email = columns
        .iter()
        .find(|c| c["name"] == "email")
        .expect("email");
    assert_eq!(
        (email["records"].as_i64(), email["non_null"].as_i64()),
        (Some(3), Some(2))
    );
    let completeness = email["completeness"].as_f64().unwrap_or_default();
    assert!((completeness - 2.0 / 3.0).abs() < 1e-3, "{email}");
    assert_eq!(email["validity"], 1.0);
    assert!(email["score"].as_f64().is_some_and(|s| s < 1.0));
    let mean = report["mean_score"].as_f64().expect("a mean");
    let scores: Vec<f64> = loads.iter().filter_map(|l| l["score"].as_f64()).collect();
    assert!((mean - (scores[0] + scores[1]) / 2.0).abs() < 1e-9);
    let one = json(&db, &["quality", "acme", "orders", "--last", "1"]);
    assert_eq!(one["loads"].as_array().map(Vec::len), Some(1));

    let table = ok(&db, &["quality", "acme", "orders"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("LOAD  FINISHED"), "{table}");
    assert!(
        lines[0].ends_with("RECORDS  VERSION  SCORE  WEAKEST COLUMN"),
        "{table}"
    );
    assert!(
        lines[1].ends_with("4        2  0.944  email (0.833)"),
        "{table}"
    );
    assert_eq!(lines[3], "acme/orders: mean score 0.972 over 2 load(s)");
    db.finish().await
}

#[tokio::test]
async fn unknown_datasets_versions_and_loads_exit_1_with_the_reason() -> Result {
    let db = TestDb::new().await?;
    let seed = seed(&db, "unknown").await?;
    let single = file("unknown", "single.csv", "a\n1\n");
    assert!(ingest(&db, &single, "single").status.success());

    let cases: [(&[&str], &str); 7] = [
        (
            &["schema", "show", "acme", "nosuch"],
            "unknown dataset acme/nosuch",
        ),
        (
            &["schema", "history", "acme", "nosuch", "--json"],
            "unknown dataset acme/nosuch",
        ),
        (
            &["quality", "acme", "nosuch"],
            "unknown dataset acme/nosuch",
        ),
        (
            &["schema", "show", "acme", "orders", "--version", "9"],
            "acme/orders has no schema version 9 (it has versions 1 to 2)",
        ),
        (
            &["schema", "diff", "acme", "orders", "1", "3"],
            "no schema version 3",
        ),
        (
            &["schema", "diff", "acme", "single"],
            "acme/single has a single schema version",
        ),
        (
            &["schema", "show", "acme;drop", "orders"],
            "tenant name \"acme;drop\"",
        ),
    ];
    for (args, message) in cases {
        let stderr = fails(&db, args);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let missing = (seed.rejected + 100).to_string();
    let stderr = fails(&db, &["rejects", &missing, "--json"]);
    assert!(
        stderr.contains(&format!("unknown load {missing}")),
        "{stderr}"
    );
    let out = bronze(&db, &["loads", "--status", "done"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses unknown statuses");
    db.finish().await
}

/// GIVEN a ledger with an object left `loading` by an attempt that died and one given
/// up on, WHEN `bronze loads --status loading|failed`, THEN each is listed with its
/// attempts, deaths, age and reason.
#[tokio::test]
async fn loads_lists_objects_stuck_or_failed_in_the_ledger() -> Result {
    let db = TestDb::new().await?;
    ok(&db, &["migrate"]);
    db.pg
        .batch_execute(
            "INSERT INTO bronze.objects (bucket, key, version_key, tenant, dataset, status,
                 attempts, deaths, error, updated_at)
             VALUES ('b', 'acme/orders/big.csv', 'v1', 'acme', 'orders', 'loading', 1, 0,
                     NULL, now() - interval '20 minutes'),
                    ('b', 'acme/orders/huge.csv', 'v1', 'acme', 'orders', 'failed', 4, 3,
                     '3 attempts died before they finished', now())",
        )
        .await?;
    let loading = json(&db, &["loads", "--status", "loading"]);
    let stuck = &loading["objects"][0];
    assert_eq!(stuck["key"], "acme/orders/big.csv");
    assert!(stuck["age_seconds"].as_i64().unwrap() >= 1200, "{stuck}");
    let failed = json(&db, &["loads", "--status", "failed", "--tenant", "acme"]);
    assert_eq!(failed["objects"].as_array().unwrap().len(), 1);
    assert_eq!(failed["objects"][0]["deaths"], 3);
    let table = ok(&db, &["loads", "--status", "failed"]);
    assert!(table.contains("3 attempts died"), "{table}");
    db.finish().await
}

/// GIVEN a database without bronze's tables, WHEN an operator command reads it, THEN
/// it says so and creates nothing.
#[tokio::test]
async fn read_only_commands_never_migrate_the_database_they_read() -> Result {
    let db = TestDb::new().await?;
    let stderr = fails(&db, &["loads"]);
    assert!(stderr.contains("has no bronze tables"), "{stderr}");
    assert!(stderr.contains(&db.name), "names the database: {stderr}");
    let created: bool = db
        .pg
        .query_one("SELECT to_regclass('bronze.migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    assert!(!created);
    db.finish().await
}
