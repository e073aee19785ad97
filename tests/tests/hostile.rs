//! Files as a hostile or careless producer sends them, through the real load function:
//! nothing lost silently, nothing stuck, nothing retried that cannot heal.

use std::time::SystemTime;

use aws_sdk_s3::types::StorageClass;
use bronze::load::Outcome;
use bronze::pipeline::LoadError;
use bronze::runner::{self, Stage};
use bronze::store::MAX_DEATHS;
use bronze::task::LoadTask;
use bronze_tests::{load_bytes, Bench, Result, TestDb};

/// A 200,001-line CSV whose line 2 opens a quote it never closes.
fn stray_quote_file() -> Vec<u8> {
    let mut csv = b"id,name,amount\n1,\"Bob,10\n".to_vec();
    for i in 2..=200_000 {
        csv.extend_from_slice(format!("{i},name{i},{}\n", i % 97).as_bytes());
    }
    csv
}

#[tokio::test]
async fn a_stray_quote_loses_one_line_and_loads_the_rest() -> Result {
    let db = TestDb::new().await?;
    let csv = stray_quote_file();
    let loaded = load_bytes(&db, "orders", "orders.csv", SystemTime::now(), &csv).await??;
    assert_eq!(
        (loaded.counts.inserted, loaded.counts.rejected),
        (199_999, 1)
    );
    let row = db
        .pg
        .query_one("SELECT line, reason, raw FROM bronze.rejects", &[])
        .await?;
    assert_eq!(row.get::<_, i64>(0), 2);
    assert!(row.get::<_, &str>(1).contains("opened on line 2"));
    assert_eq!(row.get::<_, &str>(2), "1,Bob,10");
    db.finish().await
}

#[tokio::test]
async fn the_default_policy_never_calls_a_mostly_refused_file_loaded() -> Result {
    let db = TestDb::new().await?;
    // Half the records have no key: the file is skipped whole, with why, and its
    // table is not even made.
    bronze_tests::configure_key(&db, "keyed", "id").await?;
    let csv = b"id,v\n1,a\n,b\n3,c\n,d\n";
    let verdict = load_bytes(&db, "keyed", "k.csv", SystemTime::now(), csv).await?;
    let Err(LoadError::Rejected { reason, .. }) = verdict else {
        panic!("expected the file skipped, got {verdict:?}");
    };
    assert!(
        reason.starts_with("2 of 4 records (2 of 5 lines, 50.0%) were rejected")
            && reason.ends_with("the first: line 3: key column \"id\" is empty"),
        "{reason}"
    );
    assert_eq!(db.count("SELECT count(*) FROM bronze.loads").await?, 0);
    db.finish().await
}

fn task(bench: &Bench, id: i64, key: &str) -> LoadTask {
    LoadTask {
        object_id: id,
        bucket: bench.settings.bucket.clone(),
        key: key.into(),
        version_id: None,
        etag: None,
    }
}

async fn dispatched(bench: &Bench, key: &str, body: &[u8]) -> Result<i64> {
    bench.put(key, body.to_vec()).await?;
    runner::poll_once(
        &bench.sqs,
        &bench.queues.landing,
        Stage::Dispatch(&bench.dispatcher()),
        0,
    )
    .await?;
    let id = bench
        .pg
        .query_one("SELECT id FROM bronze.objects WHERE key = $1", &[&key])
        .await?
        .get(0);
    Ok(id)
}

#[tokio::test]
async fn a_load_that_died_is_retried_with_the_reason_then_failed() -> Result {
    let bench = Bench::new(30).await?;
    let loader = bench.loader();
    // An attempt that died leaves its row `loading`, locked by nobody.
    let id = dispatched(&bench, "acme/orders/a.csv", b"id\n1\n").await?;
    let died = "UPDATE bronze.objects SET status = 'loading', attempts = attempts + 1,
                    deaths = $2 WHERE id = $1";
    bench.pg.execute(died, &[&id, &0i32]).await?;
    let outcome = loader.load(&task(&bench, id, "acme/orders/a.csv")).await?;
    assert!(matches!(outcome, Outcome::Loaded(_)), "{outcome:?}");
    let row = bench
        .pg
        .query_one(
            "SELECT status, attempts, deaths FROM bronze.objects WHERE id = $1",
            &[&id],
        )
        .await?;
    assert_eq!(
        (row.get::<_, &str>(0), row.get::<_, i32>(1), row.get(2)),
        ("loaded", 2, 1)
    );
    // One that keeps dying is given up on, for a human, instead of the DLQ.
    let id = dispatched(&bench, "acme/orders/b.csv", b"id\n1\n").await?;
    bench.pg.execute(died, &[&id, &(MAX_DEATHS - 1)]).await?;
    let outcome = loader.load(&task(&bench, id, "acme/orders/b.csv")).await?;
    let Outcome::Failed { reason } = outcome else {
        panic!("expected failed, got {outcome:?}");
    };
    assert!(reason.contains("3 attempts died"), "{reason}");
    let status: String = bench
        .pg
        .query_one("SELECT status FROM bronze.objects WHERE id = $1", &[&id])
        .await?
        .get(0);
    assert_eq!(status, "failed");
    // A late duplicate of the task changes nothing.
    let again = loader.load(&task(&bench, id, "acme/orders/b.csv")).await?;
    assert!(matches!(again, Outcome::AlreadyDone(_)), "{again:?}");
    bench.finish().await
}

#[tokio::test]
async fn one_bad_file_delivered_twice_at_once_is_rejected_once() -> Result {
    let bench = Bench::new(30).await?;
    let key = "acme/orders/bad.json";
    let id = dispatched(&bench, key, b"[{\"a\":1},{\"a\":tru}]").await?;
    let (a, b) = (bench.loader(), bench.loader());
    let t = task(&bench, id, key);
    let (ra, rb) = tokio::join!(a.load(&t), b.load(&t));
    let verdicts = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Ok(Outcome::Rejected { .. })))
        .count();
    assert_eq!(verdicts, 1, "{ra:?} {rb:?}");
    let rejected = "SELECT count(*) FROM bronze.loads WHERE status = 'rejected'";
    assert_eq!(bench.count(rejected).await?, 1);
    bench.finish().await
}

#[tokio::test]
async fn an_archived_object_is_skipped_with_the_reason_not_retried() -> Result {
    let bench = Bench::new(30).await?;
    let key = "acme/orders/cold.csv";
    let id = dispatched(&bench, key, b"id\n1\n").await?;
    bench
        .s3
        .put_object()
        .bucket(&bench.settings.bucket)
        .key(key)
        .storage_class(StorageClass::Glacier)
        .body(b"id\n1\n".to_vec().into())
        .send()
        .await?;
    let outcome = bench.loader().load(&task(&bench, id, key)).await?;
    let Outcome::Skipped { reason } = outcome else {
        panic!("expected skipped, got {outcome:?}");
    };
    assert!(reason.contains("archived"), "{reason}");
    bench.finish().await
}

#[tokio::test]
async fn keys_that_are_data_make_no_columns_and_no_new_versions() -> Result {
    let db = TestDb::new().await?;
    let start = SystemTime::now();
    for (n, name) in [(0u32, "a.ndjson"), (5_000, "b.ndjson")] {
        let body: String = (n..n + 5_000)
            .map(|i| format!("{{\"u{i}\":{{\"score\":{i}}}}}\n"))
            .collect();
        let at = start + std::time::Duration::from_secs(u64::from(n));
        let loaded = load_bytes(&db, "events", name, at, body.as_bytes()).await??;
        assert_eq!(
            (loaded.schema_version, loaded.counts.inserted),
            (Some(1), 5_000)
        );
    }
    let fields = "SELECT count(*), max(jsonb_array_length(fields))::bigint FROM bronze.schemas";
    let row = db.pg.query_one(fields, &[]).await?;
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 0));
    let map = "SELECT inference->'map'->>'values' FROM bronze.loads ORDER BY id LIMIT 1";
    let values: String = db.pg.query_one(map, &[]).await?.get(0);
    assert_eq!(values, "object");
    db.finish().await
}

#[tokio::test]
async fn a_gzip_bomb_is_rejected_before_it_inflates() -> Result {
    use std::io::Write;
    let db = TestDb::new().await?;
    // One member of 1 MiB of blanks, repeated: gzip readers read members one after
    // another, so 96 of them inflate to 96 MiB, all one NDJSON line.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&b" ".repeat(1 << 20))?;
    let member = gzip.finish()?;
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(b"{\"a\":\"")?;
    let mut bomb = bomb.finish()?;
    for _ in 0..96 {
        bomb.extend_from_slice(&member);
    }
    assert!(bomb.len() < 300 << 10, "{} bytes", bomb.len());
    let verdict = load_bytes(&db, "bomb", "bomb.ndjson.gz", SystemTime::now(), &bomb).await?;
    let Err(LoadError::Rejected { reason, .. }) = verdict else {
        panic!("expected a rejection, got {verdict:?}");
    };
    assert!(
        reason.contains("inflate to more than 100 times"),
        "{reason}"
    );
    db.finish().await
}

#[tokio::test]
async fn a_task_that_cannot_be_read_goes_to_the_dead_letter_queue_at_once() -> Result {
    let bench = Bench::new(30).await?;
    bench
        .sqs
        .send_message()
        .queue_url(&bench.queues.load.url)
        .message_body("{\"object_id\": \"not a number\"}")
        .send()
        .await?;
    let handled = runner::poll_once(
        &bench.sqs,
        &bench.queues.load,
        Stage::Load(&bench.loader()),
        1,
    )
    .await?;
    assert_eq!(handled, 1);
    let dead = bench
        .sqs
        .receive_message()
        .queue_url(&bench.queues.load_dlq.url)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await?;
    let message = &dead.messages()[0];
    assert_eq!(message.body(), Some("{\"object_id\": \"not a number\"}"));
    let error = message.message_attributes().and_then(|a| a.get("error"));
    let reason = error.and_then(|e| e.string_value()).unwrap_or_default();
    assert!(reason.starts_with("unreadable load task"), "{reason}");
    // Deleted from the load queue: not retried.
    assert_eq!(bench.visible(&bench.queues.load).await?, 0);
    bench.finish().await
}

#[tokio::test]
async fn an_encoding_the_detector_is_unsure_of_is_refused_until_pinned() -> Result {
    let db = TestDb::new().await?;
    let latin1 = b"name,city\ncaf\xe9,Paris\n";
    let verdict = load_bytes(&db, "cafes", "c.csv", SystemTime::now(), latin1).await?;
    let Err(LoadError::Rejected { reason, .. }) = verdict else {
        panic!("expected a rejection, got {verdict:?}");
    };
    assert!(reason.contains("--encoding"), "{reason}");
    let mut client = bronze_tests::connect(&db.url).await?;
    let pinned = bronze::store::DatasetSettings {
        encoding: bronze::format::Encoding::parse("latin1"),
        ..Default::default()
    };
    let dest = bronze::keys::Destination::new("acme", "cafes")?;
    bronze::store::set_dataset(&mut client, &dest, &pinned).await?;
    let loaded = load_bytes(&db, "cafes", "c.csv", SystemTime::now(), latin1).await??;
    assert_eq!(loaded.counts.inserted, 1);
    let name: String = db
        .pg
        .query_one("SELECT payload->>'name' FROM tenant_acme.cafes", &[])
        .await?
        .get(0);
    assert_eq!(name, "café");
    let certainty: String = db
        .pg
        .query_one(
            "SELECT encoding || ' ' || encoding_certainty FROM bronze.loads WHERE status = 'loaded'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(certainty, "windows-1252 certain");
    db.finish().await
}
