//! The first load of a dataset, which COPYs its records straight into the new table,
//! against loading the same file through staging (as a pipe is, read once): the rows,
//! rejects and counts must be the same. What only the end of the file tells (a key
//! twice, too many rejects, a new schema version) sends the load through staging.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bronze::keys::Destination;
use bronze::pipeline::Loaded;
use bronze::policy::OnError;
use bronze::store::{self, DatasetSettings};
use bronze_tests::{connect, load_bytes, load_once, Result, TestDb};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

async fn keyed(db: &TestDb, dataset: &str, key: &[&str]) -> Result {
    let settings = DatasetSettings {
        key_columns: key.iter().map(|k| k.to_string()).collect(),
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(db, dataset, settings).await
}

async fn configure(db: &TestDb, dataset: &str, settings: DatasetSettings) -> Result {
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    store::set_dataset(&mut client, &Destination::new("acme", dataset)?, &settings).await?;
    Ok(())
}

/// Every column of every row but those that name the load (its id, the dataset in the
/// source key, the time of ingestion), as text, in key order.
async fn rows(db: &TestDb, dataset: &str) -> Result<Vec<String>> {
    let rows = db
        .pg
        .query(
            &format!(
                "SELECT concat_ws('|', record_key, version, encode(record_hash, 'hex'),
                        change_type, is_current, valid_from, valid_to, payload::text,
                        source_bucket, replace(source_key, '{dataset}', '*'),
                        source_version_id, source_etag, source_line, source_ts,
                        schema_version, validated)
                 FROM tenant_acme.{dataset} ORDER BY record_key, version"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// (line, reason, raw) of a load's rejects.
async fn rejects(db: &TestDb, load_id: i64) -> Result<Vec<(i64, String, String)>> {
    let rows = db
        .pg
        .query(
            "SELECT line, reason, raw FROM bronze.rejects WHERE load_id = $1 ORDER BY line",
            &[&load_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Whether the table's pages are all marked visible to every transaction: true of
/// rows COPYed frozen, false of rows inserted from staging, before any vacuum.
async fn frozen(db: &TestDb, dataset: &str) -> Result<bool> {
    let row = db
        .pg
        .query_one(
            "SELECT relpages > 0 AND relallvisible = relpages FROM pg_class
             WHERE oid = to_regclass($1)",
            &[&format!("tenant_acme.{dataset}")],
        )
        .await?;
    Ok(row.get(0))
}

/// Loads `bytes` into `filled` (read again if need be) and into `staged` (read once),
/// and checks that both stored the same.
async fn both(db: &TestDb, filled: &str, staged: &str, bytes: &[u8]) -> Result<Loaded> {
    let name = "first.csv";
    let a = load_bytes(db, filled, name, at(1), bytes).await??;
    let b = load_once(db, staged, name, at(1), bytes).await??;
    assert_eq!(a.counts, b.counts);
    assert_eq!(
        (a.schema_version, a.new_version, a.quality_score),
        (b.schema_version, b.new_version, b.quality_score)
    );
    assert_eq!(rows(db, filled).await?, rows(db, staged).await?);
    assert_eq!(rejects(db, a.load_id).await?, rejects(db, b.load_id).await?);
    assert!(!frozen(db, staged).await?, "staged rows are inserted");
    Ok(a)
}

#[tokio::test]
async fn a_first_file_fills_its_table_with_the_rows_staging_would_write() -> Result {
    let db = TestDb::new().await?;
    keyed(&db, "filled", &["id"]).await?;
    keyed(&db, "staged", &["id"]).await?;
    let csv = b"id,name,when\n1,ann,2024-01-02\n2,bob\n3,\"c, d\",2024-01-03\n4,a,b,c\n5,eve,\n";
    let loaded = both(&db, "filled", "staged", csv).await?;
    assert_eq!((loaded.counts.inserted, loaded.counts.rejected), (3, 2));
    assert!(
        frozen(&db, "filled").await?,
        "the first fill COPYs frozen rows"
    );
    // The next file, in another order, is joined with the filled rows like any others.
    let reversed = b"id,name,when\n5,eve,\n3,\"c, d\",2024-01-03\n1,ann,2024-01-02\n";
    let again = load_bytes(&db, "filled", "second.csv", at(2), reversed).await??;
    assert_eq!((again.counts.unchanged, again.counts.inserted), (3, 0));
    db.finish().await
}

#[tokio::test]
async fn a_first_file_under_a_json_schema_fills_its_rows_validated() -> Result {
    let db = TestDb::new().await?;
    let settings = DatasetSettings {
        key_columns: vec!["id".into()],
        json_schema: Some(serde_json::json!({
            "type": "object",
            "properties": {"v": {"type": "string", "pattern": "^[a-z]+$"}}
        })),
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "filled", settings.clone()).await?;
    configure(&db, "staged", settings).await?;
    let loaded = both(&db, "filled", "staged", b"id,v\n1,a\n2,B\n3,c\n").await?;
    assert_eq!((loaded.counts.inserted, loaded.counts.rejected), (2, 1));
    assert!(frozen(&db, "filled").await?);
    let validated = db
        .count("SELECT count(*) FROM tenant_acme.filled WHERE validated")
        .await?;
    assert_eq!(validated, 2);
    db.finish().await
}

/// The text sent for a JSON record's payload has its keys reordered for the server;
/// the stored value and the hash are the canonical record's, into a new table and
/// through the second read of a table with rows.
#[tokio::test]
async fn json_payloads_store_the_value_they_hash() -> Result {
    let db = TestDb::new().await?;
    keyed(&db, "j", &["id"]).await?;
    let first = br#"{"id":1,"bbb":{"zz":1,"y":[2,{"q":3}]},"a":"x\"y","cc":null}"#;
    let canonical = r#"{"a":"x\"y","bbb":{"y":[2,{"q":3}],"zz":1},"cc":null,"id":1}"#;
    load_bytes(&db, "j", "1.ndjson", at(1), first).await??;
    let second = br#"{"id":1,"bbb":{"zz":2},"cc":[1]}"#;
    let changed = r#"{"bbb":{"zz":2},"cc":[1],"id":1}"#;
    load_bytes(&db, "j", "2.ndjson", at(2), second).await??;
    let stored = |version: i32, canonical: &'static str| {
        let pg = &db.pg;
        async move {
            let row = pg
                .query_one(
                    "SELECT payload = $2::text::jsonb
                            AND record_hash = sha256(convert_to($2, 'UTF8'))
                     FROM tenant_acme.j WHERE version = $1",
                    &[&version, &canonical],
                )
                .await?;
            Result::<bool>::Ok(row.get(0))
        }
    };
    assert!(stored(1, canonical).await?, "version 1 is the first record");
    assert!(stored(2, changed).await?, "version 2 is the second record");
    db.finish().await
}

#[tokio::test]
async fn a_key_twice_in_a_first_file_sends_it_through_staging() -> Result {
    let db = TestDb::new().await?;
    keyed(&db, "filled", &["id"]).await?;
    keyed(&db, "staged", &["id"]).await?;
    let csv = b"id,v\n1,a\n2,b\n1,c\n";
    let loaded = both(&db, "filled", "staged", csv).await?;
    assert_eq!((loaded.counts.inserted, loaded.counts.updated), (2, 1));
    assert!(!frozen(&db, "filled").await?, "read again into staging");
    db.finish().await
}

/// However many records a first file refuses, it fills its table: the rejects are
/// counted exactly and the first of them kept, in bounded memory, with their size.
#[tokio::test]
async fn a_first_file_with_many_rejects_fills_and_keeps_a_bounded_sample() -> Result {
    let db = TestDb::new().await?;
    let tolerant = DatasetSettings {
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "filled", tolerant.clone()).await?;
    configure(&db, "staged", tolerant).await?;
    // 1,100 ragged records of 5 KB each, fewer than the good ones so the file is not
    // refused whole as the wrong file.
    let mut csv = b"id,v\n".to_vec();
    let wide = "x".repeat(5000);
    for i in 0..2_200 {
        csv.extend_from_slice(format!("{i},ok\n").as_bytes());
        if i % 2 == 0 {
            csv.extend_from_slice(format!("{i},{wide},extra\n").as_bytes());
        }
    }
    let loaded = both(&db, "filled", "staged", &csv).await?;
    assert_eq!(
        (loaded.counts.inserted, loaded.counts.rejected),
        (2_200, 1_100)
    );
    assert!(frozen(&db, "filled").await?, "filled, not read again");
    let row = db
        .pg
        .query_one(
            "SELECT count(*), max(length(raw)), min(raw_bytes) FROM bronze.rejects
             WHERE load_id = $1",
            &[&loaded.load_id],
        )
        .await?;
    let (stored, longest, size): (i64, i32, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(stored, 1000, "the first 1,000 are kept");
    assert_eq!(longest, 4096, "each cut to 4 KiB");
    assert!(size > 5000, "with the size it had: {size}");
    db.finish().await
}

#[tokio::test]
async fn a_new_table_keeps_the_schema_history_it_finds() -> Result {
    let db = TestDb::new().await?;
    let first = load_bytes(&db, "d", "a.csv", at(1), b"a,b\n1,2\n").await??;
    assert_eq!(first.schema_version, Some(1));
    let drop = "DROP TABLE tenant_acme.d CASCADE";
    // Dropped by an operator: the history stays, and a file that fits version 1 fills
    // the new table under it.
    db.pg.batch_execute(drop).await?;
    let same = load_bytes(&db, "d", "b.csv", at(2), b"a,b\n3,4\n").await??;
    assert_eq!((same.schema_version, same.new_version), (Some(1), false));
    assert!(frozen(&db, "d").await?);
    // A file that makes version 2 is known to only at its end: its rows go through
    // staging, under version 2.
    db.pg.batch_execute(drop).await?;
    let grown = load_bytes(&db, "d", "c.csv", at(3), b"a,b,c\n5,6,7\n").await??;
    assert_eq!((grown.schema_version, grown.new_version), (Some(2), true));
    assert!(!frozen(&db, "d").await?, "read again into staging");
    let versions = db
        .count("SELECT count(*) FROM tenant_acme.d WHERE schema_version = 2")
        .await?;
    assert_eq!(versions, 1);
    db.finish().await
}
