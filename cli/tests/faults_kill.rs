//! Fault suite (docs/faults.md), point 1: the loading process killed with SIGKILL at
//! each fault point of a load, then another runner takes over. The real `bronze run`
//! runs against moto and PostgreSQL; `BRONZE_FAULT` (debug builds only) pauses it at
//! the point, the test checks what other sessions see, then kills it.

use std::time::Duration;

use bronze_tests::faults::{
    self, await_load_queue_empty, await_verdicts, ledger, loads_by_key, orders_a, orders_b,
    orders_bench, table_snapshot, Process,
};
use bronze_tests::{Bench, Result};

const BIN: &str = env!("CARGO_BIN_EXE_bronze");
/// Short, so that a killed runner's message comes back soon.
const VISIBILITY: u32 = 2;
const TABLE: &str = "tenant_acme.orders";
const A: &str = "acme/orders/a.csv";
const B: &str = "acme/orders/b.csv";
const ROWS: usize = 12_000;

fn file_a() -> String {
    orders_a(ROWS)
}

fn file_b() -> String {
    orders_b(ROWS)
}

async fn world() -> Result<Bench> {
    orders_bench(VISIBILITY).await
}

async fn clean_run(files: &[(&str, String)]) -> Result<Vec<String>> {
    faults::clean_run(TABLE, files).await
}

/// The table as another session sees it now (empty while it does not exist).
async fn visible(bench: &Bench) -> Result<Vec<String>> {
    let exists: bool = bench
        .pg
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&TABLE])
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    table_snapshot(&bench.pg, TABLE).await
}

/// GIVEN a dataset (empty, or holding file A), WHEN the runner loading the next file is
/// killed at `point` and another runner takes over, THEN the result equals a clean
/// run's, each file has one load, the ledger counts the attempt that died, and while
/// the killed load was paused nothing of it was visible.
async fn killed_at(point: &str, into_existing: bool) -> Result {
    let files: Vec<(&str, String)> = if into_existing {
        vec![(A, file_a()), (B, file_b())]
    } else {
        vec![(A, file_a())]
    };
    let expected = clean_run(&files).await?;
    let bench = world().await?;
    let (faulted, earlier) = files.split_last().ok_or("no files")?;
    for (key, body) in earlier {
        bench.put(key, body.clone()).await?;
        bench.drain(&bench.dispatcher(), &bench.loader()).await?;
    }
    let before = visible(&bench).await?;

    bench.put(faulted.0, faulted.1.clone()).await?;
    let mut first = Process::runner(BIN, &bench, &bench.url, &[("BRONZE_FAULT", point)])?;
    first.paused_at(point).await?;

    let rows = ledger(&bench.pg).await?;
    let row = rows
        .iter()
        .find(|r| r.key == faulted.0)
        .ok_or("no ledger row")?;
    if point == "committed" {
        assert_eq!(row.status, "loaded", "committed before the pause");
        assert_ne!(visible(&bench).await?, before);
    } else {
        assert_eq!(row.status, "loading", "{row:?}");
        assert_eq!(
            visible(&bench).await?,
            before,
            "nothing of an uncommitted load is visible"
        );
        assert!(loads_by_key(&bench.pg)
            .await?
            .iter()
            .all(|(key, _)| key != faulted.0));
    }
    first.kill()?;

    let mut second = Process::runner(BIN, &bench, &bench.url, &[])?;
    let rows = await_verdicts(&bench.pg, files.len(), Duration::from_secs(90)).await?;
    await_load_queue_empty(&bench, Duration::from_secs(60)).await?;
    second.kill()?;

    assert!(rows.iter().all(|r| r.status == "loaded"), "{rows:?}");
    let row = rows
        .iter()
        .find(|r| r.key == faulted.0)
        .ok_or("no ledger row")?;
    if point == "committed" {
        // The redelivered message found the verdict: no second attempt was counted.
        assert_eq!((row.attempts, row.deaths), (1, 0), "{row:?}");
    } else {
        assert_eq!((row.attempts, row.deaths), (2, 1), "{row:?}");
    }
    let loads = loads_by_key(&bench.pg).await?;
    let expected_loads: Vec<(String, String)> = files
        .iter()
        .map(|(key, _)| ((*key).to_owned(), "loaded".to_owned()))
        .collect();
    assert_eq!(loads, expected_loads, "one load per file");
    let after = table_snapshot(&bench.pg, TABLE).await?;
    assert_eq!(after.len(), expected.len());
    assert!(after == expected, "the table differs from a clean run's");
    bench.finish().await
}

#[tokio::test]
async fn killed_after_get_before_any_write_into_a_new_table() -> Result {
    killed_at("open", false).await
}

#[tokio::test]
async fn killed_during_copy_into_a_new_table() -> Result {
    killed_at("copy", false).await
}

#[tokio::test]
async fn killed_before_commit_into_a_new_table() -> Result {
    killed_at("commit", false).await
}

#[tokio::test]
async fn killed_after_commit_before_the_sqs_delete_new_table() -> Result {
    killed_at("committed", false).await
}

#[tokio::test]
async fn killed_during_the_s3_read_into_a_table_with_rows() -> Result {
    killed_at("open", true).await
}

#[tokio::test]
async fn killed_during_copy_into_a_table_with_rows() -> Result {
    killed_at("copy", true).await
}

#[tokio::test]
async fn killed_during_merge() -> Result {
    killed_at("merge", true).await
}

#[tokio::test]
async fn killed_just_before_commit() -> Result {
    killed_at("commit", true).await
}

#[tokio::test]
async fn killed_after_commit_before_the_sqs_delete() -> Result {
    killed_at("committed", true).await
}

#[tokio::test]
async fn killed_in_dispatch_between_the_ledger_row_and_the_load_task() -> Result {
    let files = vec![(A, file_a())];
    let expected = clean_run(&files).await?;
    let bench = world().await?;
    // GIVEN a runner paused in dispatch: A's ledger row written, its load task not sent
    bench.put(A, file_a()).await?;
    let mut first = Process::runner(BIN, &bench, &bench.url, &[("BRONZE_FAULT", "recorded")])?;
    first.paused_at("recorded").await?;
    let rows = ledger(&bench.pg).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("pending", 0));
    assert_eq!(
        bench.visible(&bench.queues.load).await?,
        0,
        "no task sent yet"
    );
    // WHEN it is killed and another runner takes over
    first.kill()?;
    let mut second = Process::runner(BIN, &bench, &bench.url, &[])?;
    // THEN the redelivered notification finds the pending row and sends its task again
    let rows = await_verdicts(&bench.pg, 1, Duration::from_secs(60)).await?;
    await_load_queue_empty(&bench, Duration::from_secs(30)).await?;
    second.kill()?;
    assert_eq!(
        (rows[0].status.as_str(), rows[0].attempts, rows[0].deaths),
        ("loaded", 1, 0)
    );
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 1);
    assert!(table_snapshot(&bench.pg, TABLE).await? == expected);
    bench.finish().await
}
