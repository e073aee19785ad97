//! Fault suite (docs/faults.md), point 4: S3 faults through an HTTP proxy in front of
//! the emulator. Dispatch and load run in process, on the queues, with an S3 client
//! that goes through the proxy; the test's own uploads do not.

use std::time::{Duration, Instant};

use bronze::dispatch::Dispatcher;
use bronze::load::Loader;
use bronze::runner::{self, Stage};
use bronze_tests::faults::{
    self, await_verdicts, ledger, loads_by_key, orders_a, orders_b, orders_bench, table_snapshot,
    S3Fault, S3Proxy,
};
use bronze_tests::{Bench, Result};

const TABLE: &str = "tenant_acme.orders";
const A: &str = "acme/orders/a.csv";
const B: &str = "acme/orders/b.csv";

fn file_a() -> String {
    orders_a(2_000)
}

fn file_b() -> String {
    orders_b(2_000)
}

/// A bench (visibility timeout 1 s: failed messages come back soon), dataset `orders`
/// keyed by `order_id`, and a proxy in front of S3.
async fn world() -> Result<(Bench, S3Proxy)> {
    let bench = orders_bench(1).await?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
    let proxy = S3Proxy::start(&endpoint).await?;
    Ok((bench, proxy))
}

async fn handlers(bench: &Bench, proxy: &S3Proxy) -> (Dispatcher, Loader) {
    let s3 = proxy.s3_client().await;
    let mut dispatcher = bench.dispatcher();
    dispatcher.s3 = s3.clone();
    let mut loader = bench.loader();
    loader.s3 = s3;
    (dispatcher, loader)
}

/// One round of the runner: a batch from each queue, if any.
async fn poll(bench: &Bench, dispatcher: &Dispatcher, loader: &Loader) -> Result<usize> {
    let landing = &bench.queues.landing;
    let dispatched = runner::poll_once(&bench.sqs, landing, Stage::Dispatch(dispatcher), 0).await?;
    let loaded = runner::poll_once(&bench.sqs, &bench.queues.load, Stage::Load(loader), 0).await?;
    Ok(dispatched + loaded)
}

/// Runs the runner's rounds until `done` holds of the ledger (bounded).
async fn run_until(
    bench: &Bench,
    dispatcher: &Dispatcher,
    loader: &Loader,
    what: &str,
    done: impl Fn(&[bronze_tests::faults::LedgerRow]) -> bool,
) -> Result<Vec<bronze_tests::faults::LedgerRow>> {
    let started = Instant::now();
    loop {
        poll(bench, dispatcher, loader).await?;
        let rows = ledger(&bench.pg).await?;
        if done(&rows) {
            return Ok(rows);
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("never {what}: {rows:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a clean run of A then B leaves in the table.
async fn clean_run() -> Result<Vec<String>> {
    faults::clean_run(TABLE, &[(A, file_a()), (B, file_b())]).await
}

/// A then B loaded through the proxy, with whatever faults it was told to inject.
async fn load_both(bench: &Bench, proxy: &S3Proxy) -> Result<Vec<bronze_tests::faults::LedgerRow>> {
    let (dispatcher, loader) = handlers(bench, proxy).await;
    bench.put(A, file_a()).await?;
    run_until(bench, &dispatcher, &loader, "A loaded", |rows| {
        rows.iter().any(|r| r.key == A && r.status == "loaded")
    })
    .await?;
    bench.put(B, file_b()).await?;
    run_until(bench, &dispatcher, &loader, "both decided", |rows| {
        rows.len() == 2
            && rows
                .iter()
                .all(|r| r.status != "pending" && r.status != "loading")
    })
    .await
}

#[tokio::test]
async fn slow_down_on_get_is_retried_by_the_sdk_and_loads_once() -> Result {
    // GIVEN S3 answers the first two GETs of B with 503 SlowDown
    let expected = clean_run().await?;
    let (bench, proxy) = world().await?;
    proxy.inject("GET", "b.csv", S3Fault::Status(503, "SlowDown"), 2);
    // WHEN A and B are loaded
    let rows = load_both(&bench, &proxy).await?;
    // THEN the SDK's retries got through within the one attempt
    assert!(
        rows.iter().all(|r| r.status == "loaded" && r.attempts == 1),
        "{rows:?}"
    );
    let gets = proxy.seen("GET", "b.csv");
    assert!(gets.iter().filter(|s| s.faulted).count() == 2, "{gets:?}");
    assert!(gets.len() >= 3, "{gets:?}");
    assert_eq!(table_snapshot(&bench.pg, TABLE).await?, expected);
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 2);
    bench.finish().await
}

#[tokio::test]
async fn persistent_500_on_get_is_transient_then_loads_once() -> Result {
    let expected = clean_run().await?;
    let (bench, proxy) = world().await?;
    let (dispatcher, loader) = handlers(&bench, &proxy).await;
    bench.put(A, file_a()).await?;
    run_until(&bench, &dispatcher, &loader, "A loaded", |rows| {
        rows.iter().any(|r| r.status == "loaded")
    })
    .await?;
    // GIVEN every GET of B answers 500 InternalError (more than the SDK retries)
    proxy.inject("GET", "b.csv", S3Fault::Status(500, "InternalError"), 1_000);
    bench.put(B, file_b()).await?;
    // WHEN the load has been tried
    let rows = run_until(&bench, &dispatcher, &loader, "B tried", |rows| {
        rows.iter()
            .any(|r| r.key == B && r.attempts >= 1 && r.status == "pending")
    })
    .await?;
    // THEN B waits, pending with S3's error, nothing of it written
    let b = rows.iter().find(|r| r.key == B).ok_or("no B")?;
    let error = b.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("GET s3://") && error.contains("InternalError"),
        "{error}"
    );
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 1, "only A's load");
    let gets = proxy.seen("GET", "b.csv");
    assert!(gets.len() >= 2, "the SDK retried a 500: {gets:?}");
    // WHEN S3 recovers, THEN the redelivered task loads B once
    proxy.clear();
    let rows = run_until(&bench, &dispatcher, &loader, "B loaded", |rows| {
        rows.iter().all(|r| r.status == "loaded") && rows.len() == 2
    })
    .await?;
    let b = rows.iter().find(|r| r.key == B).ok_or("no B")?;
    assert!(
        b.attempts >= 2 && b.deaths == 0 && b.error.is_none(),
        "{b:?}"
    );
    assert_eq!(table_snapshot(&bench.pg, TABLE).await?, expected);
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 2);
    bench.finish().await
}

#[tokio::test]
async fn slow_down_on_head_at_dispatch_is_retried_then_loads() -> Result {
    let expected = clean_run().await?;
    let (bench, proxy) = world().await?;
    // GIVEN every HEAD of B answers 503 for a while (past the SDK's retries)
    proxy.inject("HEAD", "b.csv", S3Fault::Status(503, "SlowDown"), 6);
    // WHEN A and B arrive
    let rows = load_both(&bench, &proxy).await?;
    // THEN the landing message came back until HEAD answered, and B loaded once
    assert!(rows.iter().all(|r| r.status == "loaded"), "{rows:?}");
    let heads = proxy.seen("HEAD", "b.csv");
    assert_eq!(heads.iter().filter(|s| s.faulted).count(), 6, "{heads:?}");
    assert_eq!(table_snapshot(&bench.pg, TABLE).await?, expected);
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 2);
    bench.finish().await
}

#[tokio::test]
async fn a_stream_reset_halfway_is_transient_and_never_a_partial_load() -> Result {
    let expected = clean_run().await?;
    for (skip, read) in [(0, "first read"), (1, "second read, of the payloads")] {
        let (bench, proxy) = world().await?;
        // GIVEN the GET of B is cut halfway through its body (on its first read, or on
        // the second read that brings the changed records' payloads)
        proxy.inject_after("GET", "b.csv", S3Fault::ResetHalfway, skip, 1);
        // WHEN A and B are loaded
        let rows = load_both(&bench, &proxy).await?;
        // THEN B failed once as a fault, was retried, and loaded whole, once
        assert!(
            rows.iter().all(|r| r.status == "loaded"),
            "{read}: {rows:?}"
        );
        let b = rows.iter().find(|r| r.key == B).ok_or("no B")?;
        assert_eq!((b.attempts, b.deaths), (2, 0), "{read}: {b:?}");
        assert!(
            proxy.seen("GET", "b.csv").iter().any(|s| s.faulted),
            "{read}"
        );
        assert_eq!(table_snapshot(&bench.pg, TABLE).await?, expected, "{read}");
        assert_eq!(loads_by_key(&bench.pg).await?.len(), 2, "{read}");
        bench.finish().await?;
    }
    Ok(())
}

#[tokio::test]
async fn access_denied_on_get_fails_the_object_without_retrying() -> Result {
    let (bench, proxy) = world().await?;
    let (dispatcher, loader) = handlers(&bench, &proxy).await;
    // GIVEN GetObject of A answers 403 AccessDenied (a KMS key the function may not use)
    proxy.inject("GET", "a.csv", S3Fault::Status(403, "AccessDenied"), 1_000);
    bench.put(A, file_a()).await?;
    // WHEN it is delivered, and the queues are run well past a redelivery
    let rows = await_or_run(&bench, &dispatcher, &loader).await?;
    // THEN it is `failed` with the reason, once: no retry, no load, queue empty
    assert_eq!(rows.len(), 1);
    let a = &rows[0];
    assert_eq!((a.status.as_str(), a.attempts), ("failed", 1), "{a:?}");
    let error = a.error.as_deref().unwrap_or_default();
    assert!(error.contains("access denied"), "{error}");
    assert_eq!(proxy.seen("GET", "a.csv").len(), 1, "a 403 is not retried");
    assert!(loads_by_key(&bench.pg).await?.is_empty());
    assert_eq!(bench.visible(&bench.queues.load).await?, 0);
    assert_eq!(bench.visible(&bench.queues.load_dlq).await?, 0);
    bench.finish().await
}

/// Runs the queues until the one object has a verdict, then 2 s more (two visibility
/// timeouts) to see that nothing comes back.
async fn await_or_run(
    bench: &Bench,
    dispatcher: &Dispatcher,
    loader: &Loader,
) -> Result<Vec<bronze_tests::faults::LedgerRow>> {
    run_until(bench, dispatcher, loader, "decided", |rows| {
        rows.len() == 1 && rows[0].status != "pending" && rows[0].status != "loading"
    })
    .await?;
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(2_500) {
        poll(bench, dispatcher, loader).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    await_verdicts(&bench.pg, 1, Duration::from_secs(1)).await
}

#[tokio::test]
async fn an_object_deleted_or_overwritten_between_dispatch_and_load_is_skipped() -> Result {
    let (bench, proxy) = world().await?;
    let (dispatcher, loader) = handlers(&bench, &proxy).await;
    // GIVEN A and B dispatched, not loaded yet
    bench.put(A, file_a()).await?;
    bench.put(B, file_b()).await?;
    let landing = &bench.queues.landing;
    for _ in 0..5 {
        runner::poll_once(&bench.sqs, landing, Stage::Dispatch(&dispatcher), 0).await?;
    }
    assert_eq!(ledger(&bench.pg).await?.len(), 2);
    // WHEN A is deleted and B overwritten before the loads run
    bench
        .s3
        .delete_object()
        .bucket(&bench.settings.bucket)
        .key(A)
        .send()
        .await?;
    bench.put(B, file_a()).await?;
    let rows = run_until(&bench, &dispatcher, &loader, "all decided", |rows| {
        rows.len() == 3
            && rows
                .iter()
                .all(|r| r.status != "pending" && r.status != "loading")
    })
    .await?;
    // THEN both tasks are skipped with the reason, and B's new version loads
    let statuses: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.key.as_str(), r.status.as_str()))
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![(A, "skipped"), (B, "loaded"), (B, "skipped")],
        "{rows:?}"
    );
    assert!(rows.iter().filter(|r| r.status == "skipped").all(|r| r
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("deleted or overwritten")));
    assert_eq!(
        bench
            .count(&format!("SELECT count(*) FROM {TABLE}"))
            .await?,
        2_000
    );
    bench.finish().await
}
