//! Change detection and history against PostgreSQL: every version rule of a dataset.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bronze::keys::Destination;
use bronze::pipeline::LoadError;
use bronze::pipeline::Loaded;
use bronze::policy::OnError;
use bronze::store::{self, DatasetSettings, LoadCounts};
use bronze_tests::{connect, load_bytes, load_reread, InMemory, Result, TestDb};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

/// Loads `csv` as the file `name`, last modified at `ts`, through the real pipeline.
async fn load(db: &TestDb, dataset: &str, name: &str, ts: u64, csv: &str) -> Result<Loaded> {
    Ok(load_bytes(db, dataset, name, at(ts), csv.as_bytes()).await??)
}

async fn configure(db: &TestDb, dataset: &str, key: &[&str], snapshot: bool) -> Result {
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let dest = Destination::new("acme", dataset)?;
    let settings = DatasetSettings {
        key_columns: key.iter().map(|k| k.to_string()).collect(),
        snapshot,
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    store::set_dataset(&mut client, &dest, &settings).await?;
    Ok(())
}

fn counts(inserted: i64, updated: i64, unchanged: i64, deleted: i64) -> (i64, i64, i64, i64) {
    (inserted, updated, unchanged, deleted)
}

fn of(c: &LoadCounts) -> (i64, i64, i64, i64) {
    (c.inserted, c.updated, c.unchanged, c.deleted)
}

/// (record_key, version, change_type, is_current, payload's `v`) for every row.
async fn history(
    db: &TestDb,
    dataset: &str,
) -> Result<Vec<(String, i32, String, bool, Option<String>)>> {
    let rows = db
        .pg
        .query(
            &format!(
                "SELECT record_key, version, change_type, is_current, payload->>'v'
                 FROM tenant_acme.{dataset} ORDER BY record_key, version"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect())
}

/// One line of JSON: an array of records of key 1, one per `v`.
fn one_line(vs: &[&str]) -> String {
    let items: Vec<String> = vs
        .iter()
        .map(|v| format!(r#"{{"id":1,"v":"{v}"}}"#))
        .collect();
    format!("[{}]", items.join(","))
}

/// (version, is_current, payload's `v`) of every row, for datasets of one key.
async fn versions(db: &TestDb, dataset: &str) -> Result<Vec<(i32, bool, String)>> {
    Ok(history(db, dataset)
        .await?
        .into_iter()
        .map(|(_, version, _, current, v)| (version, current, v.unwrap_or_default()))
        .collect())
}

fn owned(rows: &[(i32, bool, &str)]) -> Vec<(i32, bool, String)> {
    rows.iter()
        .map(|&(n, current, v)| (n, current, v.to_owned()))
        .collect()
}

fn row(
    key: &str,
    version: i32,
    change: &str,
    current: bool,
    v: Option<&str>,
) -> (String, i32, String, bool, Option<String>) {
    (
        key.into(),
        version,
        change.into(),
        current,
        v.map(str::to_owned),
    )
}

#[tokio::test]
async fn insert_unchanged_and_update_by_business_key() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", &["id"], false).await?;
    let first = load(&db, "orders", "1.csv", 1, "id,v\n1,a\n2,b\n").await?;
    assert_eq!(of(&first.counts), counts(2, 0, 0, 0));
    let same = load(&db, "orders", "2.csv", 2, "id,v\n2,b\n1,a\n").await?;
    assert_eq!(of(&same.counts), counts(0, 0, 2, 0));
    let changed = load(&db, "orders", "3.csv", 3, "id,v\n1,A\n2,b\n3,c\n").await?;
    assert_eq!(of(&changed.counts), counts(1, 1, 1, 0));
    assert_eq!(
        history(&db, "orders").await?,
        vec![
            row(r#"["1"]"#, 1, "insert", false, Some("a")),
            row(r#"["1"]"#, 2, "update", true, Some("A")),
            row(r#"["2"]"#, 1, "insert", true, Some("b")),
            row(r#"["3"]"#, 1, "insert", true, Some("c")),
        ]
    );
    let closed: Option<SystemTime> = db
        .pg
        .query_one(
            r#"SELECT valid_to FROM tenant_acme.orders WHERE record_key = '["1"]' AND version = 1"#,
            &[],
        )
        .await?
        .get(0);
    assert_eq!(
        closed,
        Some(at(3)),
        "the old version ends when the new one begins"
    );
    db.finish().await
}

#[tokio::test]
async fn a_key_repeated_in_one_file_gives_versions_in_line_order() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "events", &["id"], false).await?;
    let loaded = load(&db, "events", "1.csv", 1, "id,v\n1,a\n2,x\n1,b\n1,b\n1,c\n").await?;
    assert_eq!(of(&loaded.counts), counts(2, 2, 1, 0));
    assert_eq!(
        history(&db, "events").await?,
        vec![
            row(r#"["1"]"#, 1, "insert", false, Some("a")),
            row(r#"["1"]"#, 2, "update", false, Some("b")),
            row(r#"["1"]"#, 3, "update", true, Some("c")),
            row(r#"["2"]"#, 1, "insert", true, Some("x")),
        ]
    );
    let lines: Vec<i64> = db
        .pg
        .query(r#"SELECT source_line FROM tenant_acme.events WHERE record_key = '["1"]' ORDER BY version"#, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(lines, vec![2, 4, 6]);

    // Into the table it made: the second read brings the payloads.
    let loaded = load(&db, "events", "2.csv", 2, "id,v\n1,c\n1,d\n2,x\n1,d\n").await?;
    assert_eq!(of(&loaded.counts), counts(0, 1, 3, 0));
    let top = history(&db, "events").await?;
    assert_eq!(top[3], row(r#"["1"]"#, 4, "update", true, Some("d")));
    assert_eq!(top.len(), 5);
    db.finish().await
}

/// Records of a JSON array written on one line share their line: their order in the
/// file still decides their versions, into a new table and into one with rows.
#[tokio::test]
async fn records_sharing_a_line_are_versioned_in_file_order() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "events", &["id"], false).await?;
    let loaded = load(&db, "events", "1.json", 1, &one_line(&["a", "b", "c"])).await?;
    assert_eq!(of(&loaded.counts), counts(1, 2, 0, 0));
    let loaded = load(&db, "events", "2.json", 2, &one_line(&["c", "e", "d"])).await?;
    assert_eq!(of(&loaded.counts), counts(0, 2, 1, 0));
    let expected = [
        (1, false, "a"),
        (2, false, "b"),
        (3, false, "c"),
        (4, false, "e"),
        (5, true, "d"),
    ];
    assert_eq!(versions(&db, "events").await?, owned(&expected));
    db.finish().await
}

/// A late file's neighbours in source order are found among records that share a line
/// too: the version before a late record is the last of its load's line, not any.
#[tokio::test]
async fn a_late_file_finds_its_neighbours_among_records_sharing_a_line() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "events", &["id"], false).await?;
    load(&db, "events", "a.json", 1, &one_line(&["a", "b"])).await?;
    load(&db, "events", "c.json", 3, &one_line(&["c", "d"])).await?;
    let late = load(&db, "events", "b.json", 2, &one_line(&["a"])).await?;
    assert_eq!(of(&late.counts), counts(0, 1, 0, 0), "b → a is a change");
    let late = load(&db, "events", "b2.json", 2, &one_line(&["c"])).await?;
    assert_eq!(
        of(&late.counts),
        counts(0, 0, 1, 0),
        "the same as the next: c"
    );
    let expected = [
        (1, false, "a"),
        (2, false, "b"),
        (3, false, "c"),
        (4, true, "d"),
        (5, false, "a"),
    ];
    assert_eq!(versions(&db, "events").await?, owned(&expected));
    db.finish().await
}

/// The second read must see the bytes the first one saw. If the file changed in
/// between, the load fails as a fault (to be retried) and writes nothing, rather than
/// storing a payload under another record's hash.
#[tokio::test]
async fn a_file_that_changes_between_its_two_reads_is_retried_not_mixed() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", &["id"], false).await?;
    load(&db, "orders", "1.csv", 1, "id,v\n1,a\n2,b\n").await?;
    let before = history(&db, "orders").await?;
    let changed = InMemory(b"id,v\n1,a\n2,z\n".to_vec());
    let result = load_reread(&db, "orders", "2.csv", at(2), b"id,v\n1,a\n2,c\n", &changed).await?;
    match result {
        Err(LoadError::Transient(reason)) => assert!(
            reason.contains("read differently the second time"),
            "{reason}"
        ),
        other => panic!("expected a transient fault, got {other:?}"),
    }
    assert_eq!(history(&db, "orders").await?, before);
    let shorter = InMemory(b"id,v\n1,a\n".to_vec());
    let result = load_reread(&db, "orders", "2.csv", at(2), b"id,v\n1,a\n2,c\n", &shorter).await?;
    assert!(matches!(result, Err(LoadError::Transient(_))), "{result:?}");
    assert_eq!(history(&db, "orders").await?, before);
    db.finish().await
}

#[tokio::test]
async fn snapshot_files_delete_the_keys_they_lack() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "stock", &["sku"], true).await?;
    load(&db, "stock", "1.csv", 1, "sku,v\na,1\nb,2\n").await?;
    let second = load(&db, "stock", "2.csv", 2, "sku,v\na,1\n").await?;
    assert_eq!(of(&second.counts), counts(0, 0, 1, 1));
    let third = load(&db, "stock", "3.csv", 3, "sku,v\na,1\nb,3\n").await?;
    assert_eq!(
        of(&third.counts),
        counts(1, 0, 1, 0),
        "a key back after a delete is an insert"
    );
    assert_eq!(
        history(&db, "stock").await?,
        vec![
            row(r#"["a"]"#, 1, "insert", true, Some("1")),
            row(r#"["b"]"#, 1, "insert", false, Some("2")),
            row(r#"["b"]"#, 2, "delete", false, None),
            row(r#"["b"]"#, 3, "insert", true, Some("3")),
        ]
    );
    // A snapshot with an unreadable record is not complete: it deletes nothing.
    let partial = load(&db, "stock", "4.csv", 4, "sku,v\na,1\nb\n").await?;
    assert_eq!((partial.counts.rejected, partial.counts.deleted), (1, 0));
    db.finish().await
}

/// A file whose records an earlier load brought, in the same order, with nothing
/// written since, is unchanged by its digest alone: a row altered behind bronze's back
/// (a probe the join would see) goes unnoticed then, and is seen once a load wrote.
#[tokio::test]
async fn a_file_seen_before_is_unchanged_by_its_digest_until_a_load_writes() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", &["id"], false).await?;
    let csv = "id,v\n1,a\n2,b\n";
    load(&db, "orders", "1.csv", 1, csv).await?;
    let probe = r#"UPDATE tenant_acme.orders SET record_hash = '\x00' WHERE record_key = '["1"]'"#;
    db.pg.batch_execute(probe).await?;
    let same = load(&db, "orders", "2.csv", 2, csv).await?;
    assert_eq!(of(&same.counts), counts(0, 0, 2, 0), "known by the digest");
    let other = load(&db, "orders", "3.csv", 3, "id,v\n2,B\n").await?;
    assert_eq!(of(&other.counts), counts(0, 1, 0, 0));
    let again = load(&db, "orders", "4.csv", 4, csv).await?;
    assert_eq!(
        of(&again.counts),
        counts(0, 2, 0, 0),
        "a load wrote: joined"
    );

    // A snapshot whose keys are all the table's current ones deletes nothing.
    configure(&db, "stock", &["sku"], true).await?;
    let skus = csv.replace("id", "sku");
    load(&db, "stock", "1.csv", 1, &skus).await?;
    db.pg
        .batch_execute(&probe.replace("orders", "stock"))
        .await?;
    let same = load(&db, "stock", "2.csv", 2, &skus).await?;
    assert_eq!(of(&same.counts), counts(0, 0, 2, 0), "known by the digest");
    db.finish().await
}

/// What the digest cannot vouch for is joined: a key twice in the file, a table
/// emptied behind bronze's back, and other current keys a snapshot must delete.
#[tokio::test]
async fn a_file_seen_before_is_joined_when_its_digest_cannot_vouch() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "events", &["id"], false).await?;
    let twice = "id,v\n1,a\n1,b\n";
    load(&db, "events", "1.csv", 1, twice).await?;
    let again = load(&db, "events", "2.csv", 2, twice).await?;
    assert_eq!(of(&again.counts), counts(0, 2, 0, 0), "a, then b, after b");

    configure(&db, "orders", &["id"], false).await?;
    let csv = "id,v\n1,a\n2,b\n";
    load(&db, "orders", "1.csv", 1, csv).await?;
    db.pg.batch_execute("TRUNCATE tenant_acme.orders").await?;
    let refill = load(&db, "orders", "2.csv", 2, csv).await?;
    assert_eq!(
        of(&refill.counts),
        counts(2, 0, 0, 0),
        "the table was emptied"
    );

    configure(&db, "stock", &["sku"], false).await?;
    load(&db, "stock", "1.csv", 1, "sku,v\na,1\nb,2\n").await?;
    let fewer = "sku,v\na,1\n";
    load(&db, "stock", "2.csv", 2, fewer).await?;
    configure(&db, "stock", &["sku"], true).await?;
    let snapshot = load(&db, "stock", "3.csv", 3, fewer).await?;
    assert_eq!(of(&snapshot.counts), counts(0, 0, 1, 1), "b is deleted");

    // A snapshot with a bad record deletes nothing; the same good records without it
    // delete what it lacked.
    configure(&db, "shelf", &["sku"], true).await?;
    load(&db, "shelf", "1.csv", 1, "sku,v\na,1\nb,2\n").await?;
    let partial = load(&db, "shelf", "2.csv", 2, "sku,v\na,1\nb\n").await?;
    assert_eq!((partial.counts.rejected, partial.counts.deleted), (1, 0));
    let complete = load(&db, "shelf", "3.csv", 3, "sku,v\na,1\n").await?;
    assert_eq!(of(&complete.counts), counts(0, 0, 1, 1), "b is deleted");

    // A table dropped and made again by a load that wrote nothing.
    configure(&db, "lists", &["id"], false).await?;
    load(&db, "lists", "1.csv", 1, csv).await?;
    db.pg
        .batch_execute("DROP TABLE tenant_acme.lists CASCADE")
        .await?;
    load(&db, "lists", "2.csv", 2, "id,v\n").await?;
    let refill = load(&db, "lists", "3.csv", 3, csv).await?;
    assert_eq!(
        of(&refill.counts),
        counts(2, 0, 0, 0),
        "the table was made again"
    );

    // A late file slots in before the table's rows, whose hash a probe changed.
    configure(&db, "late", &["id"], false).await?;
    load(&db, "late", "1.csv", 10, csv).await?;
    let probe = r#"UPDATE tenant_acme.late SET record_hash = '\x00' WHERE record_key = '["1"]'"#;
    db.pg.batch_execute(probe).await?;
    let late = load(&db, "late", "0.csv", 5, csv).await?;
    assert_eq!(
        late.counts.unchanged, 1,
        "joined: key 1 differs from the probe"
    );
    db.finish().await
}

#[tokio::test]
async fn records_without_their_key_are_rejected_and_the_rest_load() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", &["id"], false).await?;
    let loaded = load(&db, "orders", "1.csv", 1, "id,v\n1,a\n,b\n2,c,extra\n3,d\n").await?;
    assert_eq!((loaded.counts.inserted, loaded.counts.rejected), (2, 2));
    let rejects: Vec<(i64, String)> = db
        .pg
        .query("SELECT line, reason FROM bronze.rejects ORDER BY line", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rejects,
        vec![
            (3, "key column \"id\" is empty".into()),
            (4, "expected 2 fields as in the header, found 3".into())
        ]
    );
    db.finish().await
}

#[tokio::test]
async fn files_arriving_out_of_order_give_the_same_current_state() -> Result {
    let db = TestDb::new().await?;
    let older = "id,v\n1,a\n2,b\n3,c\n";
    let newer = "id,v\n1,a\n2,B\n4,d\n";
    configure(&db, "in_order", &["id"], false).await?;
    configure(&db, "reversed", &["id"], false).await?;
    load(&db, "in_order", "old.csv", 10, older).await?;
    load(&db, "in_order", "new.csv", 20, newer).await?;
    load(&db, "reversed", "new.csv", 20, newer).await?;
    let late = load(&db, "reversed", "old.csv", 10, older).await?;
    assert_eq!(
        of(&late.counts),
        counts(2, 0, 1, 0),
        "1 equals what came after it; 2 and 3 are new history before it"
    );

    let current = |dataset: &'static str| {
        let pg = &db.pg;
        async move {
            let sql = format!(
                "SELECT record_key, payload::text FROM tenant_acme.{dataset}
                 WHERE is_current ORDER BY record_key"
            );
            let rows = pg.query(&sql, &[]).await?;
            Ok::<_, tokio_postgres::Error>(
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                    .collect::<Vec<_>>(),
            )
        }
    };
    let in_order = current("in_order").await?;
    assert_eq!(in_order, current("reversed").await?);
    assert_eq!(in_order.len(), 4);
    let chain: Vec<(bool, Option<SystemTime>, String)> = db
        .pg
        .query(
            r#"SELECT is_current, valid_to, change_type FROM tenant_acme.reversed
               WHERE record_key = '["2"]' ORDER BY valid_from"#,
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        chain,
        vec![
            (false, Some(at(20)), "insert".into()),
            (true, None, "update".into())
        ],
        "the late version slots in before, and the newer one becomes its update"
    );
    db.finish().await
}

#[tokio::test]
async fn concurrent_loads_of_one_dataset_keep_the_version_chain() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "shared", &["id"], false).await?;
    let file = |variant: &str| {
        let mut csv = String::from("id,v\n");
        for id in 0..2000 {
            csv.push_str(&format!("{id},{variant}{}\n", id % 7));
        }
        csv
    };
    let (a, b) = (file("a"), file("b"));
    let (ra, rb) = tokio::join!(
        load(&db, "shared", "a.csv", 5, &a),
        load(&db, "shared", "b.csv", 6, &b)
    );
    let (ra, rb) = (ra?, rb?);
    let stored = |c: &LoadCounts| c.inserted + c.updated;
    assert_eq!(stored(&ra.counts) + stored(&rb.counts), 4000);
    let broken = db
        .count(
            "SELECT count(*) FROM (
                 SELECT record_key, count(*) FILTER (WHERE is_current) AS current,
                        max(version) AS top, count(*) AS n
                 FROM tenant_acme.shared GROUP BY record_key) k
             WHERE current <> 1 OR top <> n OR n <> 2",
        )
        .await?;
    assert_eq!(
        broken, 0,
        "every key: two versions, numbered 1 and 2, one current"
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM tenant_acme.shared
             WHERE is_current AND (payload->>'v' LIKE 'a%' OR change_type <> 'update')"
        )
        .await?,
        0,
        "b.csv is newer in source order, so its values are current"
    );
    db.finish().await
}
