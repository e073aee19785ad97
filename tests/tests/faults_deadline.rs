//! Fault suite (docs/faults.md), point 6: the Lambda deadline. Each attempt gets what
//! is left of the invocation less a margin, gives up before the deadline (rolled back,
//! its session ended, noted for retry), leaves unstarted what has no time left, and
//! after three attempts out of time the object is `failed` with advice instead of a
//! task retried into the dead-letter queue unseen. S3 is made to stall through the
//! fault proxy, so that no attempt can finish.

use std::time::{Duration, Instant};

use bronze::runner::{self, Stage};
use bronze::task::LoadTask;
use bronze_tests::faults::{ledger, loads_by_key, orders_a, orders_bench, S3Fault, S3Proxy};
use bronze_tests::{sqs_batch, Bench, Result};

const A: &str = "acme/orders/a.csv";
const B: &str = "acme/orders/b.csv";

/// A bench with A and B dispatched (ledger rows, not loaded), a proxy whose GETs of A
/// stall, and the load tasks' bodies.
async fn world() -> Result<(Bench, S3Proxy, Vec<String>)> {
    let bench = orders_bench(30).await?;
    let proxy = S3Proxy::start(&std::env::var("AWS_ENDPOINT_URL")?).await?;
    proxy.inject("GET", "a.csv", S3Fault::Stall, 1_000);
    let mut tasks = Vec::new();
    for key in [A, B] {
        let etag = bench.put(key, orders_a(500)).await?;
        let dispatcher = bench.dispatcher();
        let landing = &bench.queues.landing;
        runner::poll_once(&bench.sqs, landing, Stage::Dispatch(&dispatcher), 0).await?;
        let id: i64 = bench
            .pg
            .query_one("SELECT id FROM bronze.objects WHERE key = $1", &[&key])
            .await?
            .get(0);
        tasks.push(serde_json::to_string(&LoadTask {
            object_id: id,
            bucket: bench.settings.bucket.clone(),
            key: key.into(),
            version_id: None,
            etag: Some(etag),
        })?);
    }
    Ok((bench, proxy, tasks))
}

#[tokio::test]
async fn a_load_that_cannot_finish_stops_before_the_deadline_and_the_rest_waits() -> Result {
    let (bench, proxy, tasks) = world().await?;
    let mut loader = bench.loader();
    loader.s3 = proxy.s3_client().await;
    // GIVEN an invocation with 5 s left, whose first task's GET never answers
    let deadline = Instant::now() + Duration::from_secs(5);
    let batch = sqs_batch(&[&tasks[0], &tasks[1]]);
    // WHEN the batch is handled
    let response = loader.handle_until(batch, Some(deadline)).await;
    // THEN it answered before the deadline, both tasks left for redelivery
    assert!(Instant::now() < deadline, "past the deadline");
    assert_eq!(response.batch_item_failures.len(), 2);
    let rows = ledger(&bench.pg).await?;
    let (a, b) = (&rows[0], &rows[1]);
    // A: rolled back, counted as out of time, waiting with the reason
    assert_eq!(
        (a.status.as_str(), a.attempts, a.deaths),
        ("pending", 1, 1),
        "{a:?}"
    );
    assert!(
        a.error
            .as_deref()
            .unwrap_or_default()
            .contains("did not finish within"),
        "{a:?}"
    );
    // B: no time was left to start it; untouched
    assert_eq!(
        (b.status.as_str(), b.attempts, b.deaths),
        ("pending", 0, 0),
        "{b:?}"
    );
    assert!(loads_by_key(&bench.pg).await?.is_empty());
    // Nothing holds A's ledger row any more: its session was ended.
    bench
        .pg
        .query_one(
            "SELECT id FROM bronze.objects WHERE key = $1 FOR UPDATE NOWAIT",
            &[&A],
        )
        .await?;
    // WHEN S3 answers again, THEN the next invocation loads both
    proxy.clear();
    let response = loader
        .handle_until(
            sqs_batch(&[&tasks[0], &tasks[1]]),
            Some(Instant::now() + Duration::from_secs(60)),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    let rows = ledger(&bench.pg).await?;
    assert!(
        rows.iter()
            .all(|r| r.status == "loaded" && r.error.is_none()),
        "{rows:?}"
    );
    assert_eq!(
        bench
            .count("SELECT count(*) FROM tenant_acme.orders")
            .await?,
        500
    );
    bench.finish().await
}

#[tokio::test]
async fn three_attempts_out_of_time_fail_the_object_as_too_large_for_the_function() -> Result {
    let (bench, proxy, tasks) = world().await?;
    let mut loader = bench.loader();
    loader.s3 = proxy.s3_client().await;
    // GIVEN a task that cannot finish in an invocation of 4 s
    // WHEN it is delivered three times
    for attempt in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(4);
        let response = loader
            .handle_until(sqs_batch(&[&tasks[0]]), Some(deadline))
            .await;
        assert!(
            Instant::now() < deadline,
            "attempt {attempt} past the deadline"
        );
        // THEN the first two are retried, the third is the verdict (the message deleted)
        let retried = response.batch_item_failures.len() == 1;
        assert_eq!(retried, attempt < 3, "attempt {attempt}");
    }
    let rows = ledger(&bench.pg).await?;
    let a = &rows[0];
    assert_eq!(
        (a.status.as_str(), a.attempts, a.deaths),
        ("failed", 3, 3),
        "{a:?}"
    );
    let error = a.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("too large for the function") && error.contains("timeout"),
        "{error}"
    );
    // A fourth delivery changes nothing.
    let response = loader.handle_until(sqs_batch(&[&tasks[0]]), None).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(ledger(&bench.pg).await?[0].attempts, 3);
    assert!(loads_by_key(&bench.pg).await?.is_empty());
    bench.finish().await
}
