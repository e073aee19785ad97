//! The skeleton's promises, end to end against the S3/SQS endpoint and PostgreSQL.

use std::io::Write;
use std::time::Duration;

use bronze::db::{Db, DbSource};
use bronze::keys::Destination;
use bronze::load::Loader;
use bronze::policy::OnError;
use bronze::runner::{self, Stage};
use bronze::store::{self, DatasetSettings};
use bronze::task::LoadTask;
use bronze_tests::{connect, sqs_batch, Bench, Result};
use flate2::write::GzEncoder;
use flate2::Compression;

const ORDERS: &str = "order_id,customer,amount\n1,007,10.50\n2,\"Smith, J\",3\n";
const CUSTOMERS: &str = "{\"id\":1,\"name\":\"Ada\",\"tags\":[\"vip\"],\"score\":1.50}\n\n{\"id\":2,\"name\":\"Grace\",\"tags\":[],\"score\":2}\n";

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// The load task dispatch sends for the bench's object `id`.
fn load_task(bench: &Bench, id: i64, key: &str, etag: String) -> Result<String> {
    Ok(serde_json::to_string(&LoadTask {
        object_id: id,
        bucket: bench.settings.bucket.clone(),
        key: key.into(),
        version_id: None,
        etag: Some(etag),
    })?)
}

/// The one object of the test is loaded, once: its 2 rows, one load, ledger `loaded`.
async fn assert_loaded_once(bench: &Bench) -> Result {
    assert_eq!(
        bench
            .count("SELECT count(*) FROM tenant_acme.orders")
            .await?,
        2
    );
    assert_eq!(bench.count("SELECT count(*) FROM bronze.loads").await?, 1);
    let loaded = "SELECT count(*) FROM bronze.objects WHERE status = 'loaded'";
    assert_eq!(bench.count(loaded).await?, 1);
    Ok(())
}

#[tokio::test]
async fn two_dropped_files_become_rows_with_lineage() -> Result {
    let bench = Bench::new(30).await?;
    let orders_key = "acme/orders/2026 11/a+b.csv";
    let customers_key = "tenant=acme/dataset=customers/part-0001.ndjson.gz";
    let orders_etag = bench.put(orders_key, ORDERS).await?;
    let customers_etag = bench.put(customers_key, gzip(CUSTOMERS)).await?;

    bench.drain(&bench.dispatcher(), &bench.loader()).await?;

    let orders = bench
        .pg
        .query(
            "SELECT payload::text, source_bucket, source_key, source_etag, source_line, version,
                    change_type, is_current, encode(record_hash, 'hex') = record_key
             FROM tenant_acme.orders ORDER BY source_line",
            &[],
        )
        .await?;
    assert_eq!(orders.len(), 2);
    let first = &orders[0];
    assert_eq!(
        first.get::<_, String>(0),
        r#"{"amount": "10.50", "customer": "007", "order_id": "1"}"#
    );
    assert_eq!(first.get::<_, String>(1), bench.settings.bucket);
    assert_eq!(first.get::<_, String>(2), orders_key);
    assert_eq!(first.get::<_, String>(3), orders_etag);
    assert_eq!(first.get::<_, i64>(4), 2);
    assert_eq!(
        (
            first.get::<_, i32>(5),
            first.get::<_, &str>(6),
            first.get::<_, bool>(7)
        ),
        (1, "insert", true)
    );
    assert!(
        first.get::<_, bool>(8),
        "no key configured: record_key is the record hash"
    );
    assert_eq!(
        orders[1].get::<_, String>(0),
        r#"{"amount": "3", "customer": "Smith, J", "order_id": "2"}"#
    );
    assert_eq!(orders[1].get::<_, i64>(4), 3);

    let customers = bench
        .pg
        .query("SELECT payload::text, source_key, source_etag, source_line FROM tenant_acme.customers ORDER BY source_line", &[])
        .await?;
    assert_eq!(customers.len(), 2);
    assert_eq!(
        customers[0].get::<_, String>(0),
        r#"{"id": 1, "name": "Ada", "tags": ["vip"], "score": 1.50}"#
    );
    assert_eq!(customers[0].get::<_, String>(1), customers_key);
    assert_eq!(customers[0].get::<_, String>(2), customers_etag);
    assert_eq!(
        customers[1].get::<_, i64>(3),
        3,
        "blank line 2 is skipped, line numbers stay true"
    );

    let ledger = bench
        .pg
        .query(
            "SELECT key, status, attempts, tenant, dataset FROM bronze.objects ORDER BY key",
            &[],
        )
        .await?;
    let ledger: Vec<(String, String, i32)> = ledger
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        ledger,
        vec![
            (orders_key.into(), "loaded".into(), 1),
            (customers_key.into(), "loaded".into(), 1)
        ]
    );
    let loads = bench
        .pg
        .query(
            "SELECT format, compression, records_in, inserted FROM bronze.loads ORDER BY id",
            &[],
        )
        .await?;
    let loads: Vec<(String, Option<String>, i64, i64)> = loads
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert!(loads.contains(&("csv".into(), None, 2, 2)));
    assert!(loads.contains(&("ndjson".into(), Some("gzip".into()), 2, 2)));
    let inferred: Vec<(String, String)> = bench
        .pg
        .query(
            "SELECT c->>'name', c->>'type' FROM bronze.loads,
                    jsonb_array_elements(inference->'columns') c
             WHERE format = 'csv' ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [
        ("amount", "number"),
        ("customer", "string"),
        ("order_id", "integer"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(inferred, expected, "each load stores what inference found");
    bench.finish().await
}

/// Into a table that has rows a load reads its object twice (keys, then the payloads
/// of what changed): through S3, the second GET is pinned to the first one's ETag.
#[tokio::test]
async fn a_later_file_into_the_same_dataset_stores_only_what_changed() -> Result {
    let bench = Bench::new(30).await?;
    let mut client = connect(&bench.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let settings = DatasetSettings {
        key_columns: vec!["order_id".into()],
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    store::set_dataset(&mut client, &Destination::new("acme", "orders")?, &settings).await?;
    let (dispatcher, loader) = (bench.dispatcher(), bench.loader());
    bench.put("acme/orders/day1.csv", ORDERS).await?;
    bench.drain(&dispatcher, &loader).await?;
    let day2 = "order_id,customer,amount\n1,007,10.50\n2,\"Smith, J\",4\n3,Ada,1\n";
    bench.put("acme/orders/day2.csv", day2).await?;
    bench.drain(&dispatcher, &loader).await?;
    let counts = bench
        .pg
        .query_one(
            "SELECT inserted, updated, unchanged FROM bronze.loads
             WHERE source_key = 'acme/orders/day2.csv'",
            &[],
        )
        .await?;
    let counts: (i64, i64, i64) = (counts.get(0), counts.get(1), counts.get(2));
    assert_eq!(counts, (1, 1, 1));
    let rows = bench
        .pg
        .query(
            "SELECT payload->>'amount', source_key, version FROM tenant_acme.orders
             WHERE is_current ORDER BY payload->>'order_id'",
            &[],
        )
        .await?;
    let current: Vec<(String, String, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let day = |d: &str| format!("acme/orders/{d}.csv");
    assert_eq!(
        current,
        vec![
            ("10.50".into(), day("day1"), 1),
            ("4".into(), day("day2"), 2),
            ("1".into(), day("day2"), 1),
        ]
    );
    bench.finish().await
}

#[tokio::test]
async fn repeated_notifications_and_tasks_write_once() -> Result {
    let bench = Bench::new(30).await?;
    let key = "acme/orders/x.csv";
    let etag = bench.put(key, ORDERS).await?;
    // The bucket's own notification is in the landing queue; deliver it twice more.
    let dispatcher = bench.dispatcher();
    let event = bench.notification(key, &etag);
    assert!(dispatcher
        .handle(&event)
        .await?
        .batch_item_failures
        .is_empty());
    assert!(dispatcher
        .handle(&event)
        .await?
        .batch_item_failures
        .is_empty());
    assert_eq!(bench.count("SELECT count(*) FROM bronze.objects").await?, 1);

    let loader = bench.loader();
    bench.drain(&dispatcher, &loader).await?;
    assert_eq!(
        bench
            .count("SELECT count(*) FROM tenant_acme.orders")
            .await?,
        2
    );
    assert_eq!(bench.count("SELECT count(*) FROM bronze.loads").await?, 1);

    // The same task again, after the load: nothing is written.
    let id = bench.count("SELECT id FROM bronze.objects").await?;
    let task = load_task(&bench, id, key, etag)?;
    let response = loader.handle(sqs_batch(&[&task, &task])).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        bench
            .count("SELECT count(*) FROM tenant_acme.orders")
            .await?,
        2
    );
    assert_eq!(bench.count("SELECT count(*) FROM bronze.loads").await?, 1);
    assert_eq!(
        bench
            .count("SELECT attempts::bigint FROM bronze.objects")
            .await?,
        1,
        "duplicates of a loaded object are not attempts"
    );
    bench.finish().await
}

#[tokio::test]
async fn concurrent_deliveries_of_one_task_load_once() -> Result {
    let bench = Bench::new(30).await?;
    let key = "acme/orders/y.csv";
    let etag = bench.put(key, ORDERS).await?;
    runner::poll_once(
        &bench.sqs,
        &bench.queues.landing,
        Stage::Dispatch(&bench.dispatcher()),
        0,
    )
    .await?;
    let id = bench.count("SELECT id FROM bronze.objects").await?;
    let task = load_task(&bench, id, key, etag)?;
    let (a, b) = (bench.loader(), bench.loader());
    let (ra, rb) = tokio::join!(a.handle(sqs_batch(&[&task])), b.handle(sqs_batch(&[&task])));
    let failures = ra.batch_item_failures.len() + rb.batch_item_failures.len();
    assert!(failures <= 1, "at most one worker is told to retry");
    assert_loaded_once(&bench).await?;
    bench.finish().await
}

#[tokio::test]
async fn a_broken_file_is_rejected_once_and_the_good_one_loads() -> Result {
    let bench = Bench::new(1).await?;
    let mut truncated = gzip(ORDERS);
    truncated.truncate(truncated.len() - 12);
    bench.put("acme/orders/broken.csv.gz", truncated).await?;
    bench.put("acme/orders/good.csv", ORDERS).await?;
    let dispatcher = bench.dispatcher();
    runner::poll_once(
        &bench.sqs,
        &bench.queues.landing,
        Stage::Dispatch(&dispatcher),
        0,
    )
    .await?;
    runner::poll_once(
        &bench.sqs,
        &bench.queues.landing,
        Stage::Dispatch(&dispatcher),
        0,
    )
    .await?;

    // Both tasks in one batch, as Lambda would deliver them.
    let loader = bench.loader();
    let mut handled = 0;
    for _ in 0..5 {
        handled +=
            runner::poll_once(&bench.sqs, &bench.queues.load, Stage::Load(&loader), 1).await?;
        if handled == 2 {
            break;
        }
    }
    assert_eq!(handled, 2);

    let rows = bench
        .pg
        .query(
            "SELECT key, status, error FROM bronze.objects ORDER BY key",
            &[],
        )
        .await?;
    assert_eq!(rows[0].get::<_, &str>(0), "acme/orders/broken.csv.gz");
    assert_eq!(rows[0].get::<_, &str>(1), "rejected");
    let reason: &str = rows[0].get(2);
    assert!(
        reason.starts_with("line ") && reason.contains("unexpected end of file"),
        "{reason}"
    );
    assert_eq!(rows[1].get::<_, &str>(1), "loaded");
    assert_eq!(
        bench
            .count("SELECT count(*) FROM tenant_acme.orders")
            .await?,
        2
    );
    assert_eq!(
        bench.count("SELECT count(*) FROM bronze.rejects r JOIN bronze.loads l ON l.id = r.load_id WHERE l.status = 'rejected'").await?,
        1
    );

    // Past the visibility timeout nothing comes back: the bad file is not retried.
    // (2.5 s: LocalStack makes expired messages visible up to a second late.)
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(bench.visible(&bench.queues.load).await?, 0);
    assert_eq!(bench.visible(&bench.queues.load_dlq).await?, 0);
    assert_eq!(
        bench
            .count("SELECT max(attempts)::bigint FROM bronze.objects")
            .await?,
        1
    );
    bench.finish().await
}

#[tokio::test]
async fn a_database_outage_is_retried_and_then_loads_once() -> Result {
    let bench = Bench::new(1).await?;
    bench.put("acme/orders/z.csv", ORDERS).await?;
    runner::poll_once(
        &bench.sqs,
        &bench.queues.landing,
        Stage::Dispatch(&bench.dispatcher()),
        0,
    )
    .await?;

    // Nothing listens on port 1: every connection attempt is refused.
    let down = Loader {
        s3: bench.s3.clone(),
        db: Db::new(DbSource::Url(
            "postgres://postgres@127.0.0.1:1/postgres".into(),
        )),
        limits: bronze::limits::Limits::default(),
        dead_letters: None,
        metrics: bronze::metrics::Metrics::default(),
        unnoted: Default::default(),
    };
    let received = runner::poll_once(&bench.sqs, &bench.queues.load, Stage::Load(&down), 1).await?;
    assert_eq!(received, 1);
    assert_eq!(
        bench.visible(&bench.queues.load).await?,
        0,
        "the failed message is in flight, not deleted"
    );
    assert_eq!(bench.count("SELECT count(*) FROM bronze.loads").await?, 0);
    assert_eq!(
        bench
            .count("SELECT count(*) FROM bronze.objects WHERE status = 'pending'")
            .await?,
        1
    );
    let table: Option<String> = bench
        .pg
        .query_one("SELECT to_regclass('tenant_acme.orders')::text", &[])
        .await?
        .get(0);
    assert_eq!(table, None);

    // The database is back; SQS redelivers after the visibility timeout: moto on the
    // second, LocalStack up to a second later (it makes expired messages visible again
    // once a second). A long poll takes the message as soon as it is back.
    let loader = bench.loader();
    let redelivered =
        runner::poll_once(&bench.sqs, &bench.queues.load, Stage::Load(&loader), 5).await?;
    assert_eq!(redelivered, 1);
    assert_loaded_once(&bench).await?;
    bench.finish().await
}

/// One spelling per tenant: a key whose tenant only folds into a valid name (the Kelvin
/// sign lower-cases to `k`, ASCII upper case to lower case) is recorded `skipped` with
/// the reason, and no schema is made for the name it would have folded into.
#[tokio::test]
async fn look_alike_tenants_are_skipped_not_folded() -> Result {
    let bench = Bench::new(30).await?;
    let kelvin = "\u{212A}cme/orders/x.csv";
    let upper = "Acme/orders/y.csv";
    let good = "kcme/orders/z.csv";
    for key in [kelvin, upper, good] {
        bench.put(key, ORDERS).await?;
    }
    bench.drain(&bench.dispatcher(), &bench.loader()).await?;

    let ledger = bench
        .pg
        .query(
            "SELECT key, status, coalesce(error, ''), tenant FROM bronze.objects ORDER BY key",
            &[],
        )
        .await?;
    let by_key = |key: &str| {
        ledger
            .iter()
            .find(|r| r.get::<_, String>(0) == key)
            .map(|r| {
                (
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, Option<String>>(3),
                )
            })
    };
    let (status, reason, tenant) = by_key(kelvin).ok_or("no ledger row for the Kelvin key")?;
    assert_eq!((status.as_str(), tenant), ("skipped", None));
    assert!(
        reason.contains("\\u{212a}cme") && reason.contains("fold into \"kcme\""),
        "{reason}"
    );
    let (status, reason, _) = by_key(upper).ok_or("no ledger row for the upper-case key")?;
    assert_eq!(status, "skipped");
    assert!(reason.contains("\"Acme\""), "{reason}");
    let (status, _, tenant) = by_key(good).ok_or("no ledger row for the good key")?;
    assert_eq!(
        (status.as_str(), tenant.as_deref()),
        ("loaded", Some("kcme"))
    );
    assert_eq!(
        bench
            .count(
                "SELECT count(*) FROM tenant_kcme.orders WHERE source_key <> 'kcme/orders/z.csv'"
            )
            .await?,
        0,
        "only the key spelled `kcme` reached tenant kcme"
    );
    assert_eq!(
        bench
            .count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' AND nspname <> 'tenant_kcme'")
            .await?,
        0
    );
    bench.finish().await
}
