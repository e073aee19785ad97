//! Fault suite (docs/faults.md), points 2, 3 and 5: PostgreSQL restarted during a COPY
//! and during a merge, or down for longer than an attempt (a throwaway cluster of the
//! test's own), the connection cut, stalled, black-holed or down by a TCP proxy, and a
//! visibility timeout shorter than the load. The real
//! `bronze run` is paused at the fault point (`BRONZE_FAULT`, debug builds only), the
//! fault is injected, and the runner goes on.

use std::time::{Duration, Instant};

use bronze::db::{Db, DbSource};
use bronze::keys::Destination;
use bronze::store::{self, DatasetSettings};
use bronze_tests::cluster::Cluster;
use bronze_tests::faults::{
    await_load_queue_empty, await_verdicts, clean_run, ledger, loads_by_key, orders_a, orders_b,
    orders_bench, table_snapshot, Process, TcpProxy,
};
use bronze_tests::{connect, Bench, Result};

const BIN: &str = env!("CARGO_BIN_EXE_bronze");
const VISIBILITY: u32 = 2;
const TABLE: &str = "tenant_acme.orders";
const A: &str = "acme/orders/a.csv";
const B: &str = "acme/orders/b.csv";
const ROWS: usize = 8_000;

fn files() -> Vec<(&'static str, String)> {
    vec![(A, orders_a(ROWS)), (B, orders_b(ROWS))]
}

/// Loads A in process into the database at `url` (dataset keyed by `order_id`), then
/// drops B into the bucket for a runner to load.
async fn load_a_then_drop_b(bench: &Bench, url: &str) -> Result {
    let mut client = connect(url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let settings = DatasetSettings {
        key_columns: vec!["order_id".into()],
        ..Default::default()
    };
    store::set_dataset(&mut client, &Destination::new("acme", "orders")?, &settings).await?;
    let mut dispatcher = bench.dispatcher();
    dispatcher.db = Db::new(DbSource::Url(url.to_owned()));
    let mut loader = bench.loader();
    loader.db = Db::new(DbSource::Url(url.to_owned()));
    bench.put(A, orders_a(ROWS)).await?;
    bench.drain(&dispatcher, &loader).await?;
    let loaded = ledger(&client).await?;
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].status, "loaded");
    bench.put(B, orders_b(ROWS)).await?;
    Ok(())
}

/// After the fault: both files loaded once, the table as a clean run left it, and B's
/// ledger row shows its two attempts and `deaths` (a fault of the database is not an
/// attempt that died; one that ran out of time counts as one).
async fn assert_recovered(
    bench: &Bench,
    url: &str,
    expected: &[String],
    runner: &Process,
    deaths: i32,
) -> Result {
    let pg = connect(url).await?;
    let rows = await_verdicts(&pg, 2, Duration::from_secs(60))
        .await
        .map_err(|e| format!("{e}\nrunner log:\n{}", runner.log()))?;
    await_load_queue_empty(bench, Duration::from_secs(30)).await?;
    assert!(rows.iter().all(|r| r.status == "loaded"), "{rows:?}");
    let b = rows.iter().find(|r| r.key == B).ok_or("no B")?;
    assert_eq!(
        (b.attempts, b.deaths),
        (2, deaths),
        "{b:?}\n{}",
        runner.log()
    );
    assert_eq!(
        loads_by_key(&pg).await?,
        vec![
            (A.to_owned(), "loaded".to_owned()),
            (B.to_owned(), "loaded".to_owned())
        ]
    );
    assert!(
        table_snapshot(&pg, TABLE).await? == expected,
        "differs from a clean run"
    );
    Ok(())
}

/// GIVEN a dataset holding A on a cluster of the test's own, WHEN the server restarts
/// (`mode`) while the runner loading B is paused at `point`, THEN the load fails as a
/// fault, is retried, and B loads once.
async fn restarted_during(point: &str, mode: &str) -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    let cluster = Cluster::start()?;
    let url = cluster.database("bronze_faults").await?;
    load_a_then_drop_b(&bench, &url).await?;

    let mut runner = Process::runner(BIN, &bench, &url, &[("BRONZE_FAULT", point)])?;
    runner.paused_at(point).await?;
    cluster.restart(mode)?;
    runner.resume()?;

    assert_recovered(&bench, &url, &expected, &runner, 0).await?;
    drop(runner);
    bench.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_fast_during_copy() -> Result {
    restarted_during("copy", "fast").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_immediate_during_merge() -> Result {
    restarted_during("merge", "immediate").await
}

/// The bench's database, reached through `proxy`.
fn through(bench: &Bench, proxy: &TcpProxy) -> String {
    let (scheme, rest) = bench
        .url
        .split_once("://")
        .unwrap_or(("postgres", &bench.url));
    let (user, rest) = rest.split_once('@').map_or(("", rest), |(u, r)| (u, r));
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let at = if user.is_empty() { "" } else { "@" };
    format!("{scheme}://{user}{at}127.0.0.1:{}/{path}", proxy.port)
}

/// host:port of the bench's database server.
fn server(bench: &Bench) -> String {
    let rest = bench
        .url
        .split_once("://")
        .map_or(bench.url.as_str(), |(_, r)| r);
    let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_during_copy() -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    let proxy = TcpProxy::start(&server(&bench)).await?;
    let url = through(&bench, &proxy);
    load_a_then_drop_b(&bench, &bench.url).await?;
    // GIVEN the runner's connection goes through a proxy, paused in B's COPY
    let mut runner = Process::runner(BIN, &bench, &url, &[("BRONZE_FAULT", "copy")])?;
    runner.paused_at("copy").await?;
    // WHEN the proxy cuts every connection
    proxy.cut();
    runner.resume()?;
    // THEN the load is retried on a new connection and B loads once
    assert_recovered(&bench, &bench.url, &expected, &runner, 0).await?;
    assert!(proxy.connections() >= 2, "reconnected");
    drop(runner);
    bench.finish().await
}

/// GIVEN a load budget of 4 s and the runner paused at `point`, WHEN a proxy stalls
/// its connection (holds its bytes, answers nothing), THEN the attempt gives up within
/// its budget, the server ends the stalled session's transaction itself (statement or
/// idle timeout), and B loads once on a new connection.
async fn stalled_during(point: &str) -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    let proxy = TcpProxy::start(&server(&bench)).await?;
    let url = through(&bench, &proxy);
    load_a_then_drop_b(&bench, &bench.url).await?;
    let env = [("BRONZE_FAULT", point), ("BRONZE_MAX_LOAD_SECONDS", "4")];
    let mut runner = Process::runner(BIN, &bench, &url, &env)?;
    runner.paused_at(point).await?;
    proxy.stall();
    let stalled = Instant::now();
    runner.resume()?;
    let line = runner
        .wait_for("Load failed, will retry", Duration::from_secs(30))
        .await?;
    let gave_up = stalled.elapsed();
    assert!(
        gave_up < Duration::from_secs(15),
        "gave up after {gave_up:?}"
    );
    assert!(line.contains("did not finish within 4.0 s"), "{line}");
    // The attempt out of time is counted with those that died.
    assert_recovered(&bench, &bench.url, &expected, &runner, 1).await?;
    drop(runner);
    bench.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_stalled_during_copy_is_given_up_within_the_load_budget() -> Result {
    stalled_during("copy").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_stalled_during_merge_is_given_up_within_the_load_budget() -> Result {
    stalled_during("merge").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_longer_than_an_attempt_is_no_death_for_the_next_runner() -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    let cluster = Cluster::start()?;
    let url = cluster.database("bronze_faults").await?;
    load_a_then_drop_b(&bench, &url).await?;
    // GIVEN a runner paused in B's COPY
    let mut first = Process::runner(BIN, &bench, &url, &[("BRONZE_FAULT", "copy")])?;
    first.paused_at("copy").await?;
    // WHEN the server stops, and stays down past the attempt, which cannot note its
    // retry; the runner is gone (a Lambda's environment reclaimed) before it is back
    cluster.stop("fast")?;
    first.resume()?;
    first
        .wait_for("kept for the next connection", Duration::from_secs(30))
        .await?;
    first.kill()?;
    cluster.start_again()?;
    // THEN another runner finds B left `loading` before the restart: a cut, no death
    let second = Process::runner(BIN, &bench, &url, &[])?;
    assert_recovered(&bench, &url, &expected, &second, 0).await?;
    drop(second);
    bench.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_outage_longer_than_an_attempt_is_no_death() -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    let proxy = TcpProxy::start(&server(&bench)).await?;
    let url = through(&bench, &proxy);
    load_a_then_drop_b(&bench, &bench.url).await?;
    // GIVEN the runner paused in B's COPY, its database reached through a proxy
    let mut runner = Process::runner(BIN, &bench, &url, &[("BRONZE_FAULT", "copy")])?;
    runner.paused_at("copy").await?;
    // WHEN the path goes down (the server stays up) for longer than the attempt: its
    // retry cannot be noted, nor can the next delivery connect
    proxy.down();
    runner.resume()?;
    runner
        .wait_for("kept for the next connection", Duration::from_secs(30))
        .await?;
    for delivery in ["the attempt", "the next delivery"] {
        runner
            .wait_for("Load failed, will retry", Duration::from_secs(30))
            .await
            .map_err(|e| format!("{delivery}: {e}"))?;
    }
    proxy.up();
    // THEN the kept note is written once the path is back, and B loads: no death
    runner
        .wait_for("Noted a retry kept", Duration::from_secs(30))
        .await?;
    assert_recovered(&bench, &bench.url, &expected, &runner, 0).await?;
    drop(runner);
    bench.finish().await
}

/// GIVEN a load budget of 10 minutes and a TCP user timeout of 2 s, WHEN the proxy
/// stops forwarding B's COPY without closing anything (a black-holed path), THEN the
/// kernel gives the connection up within seconds, not the budget; the server session,
/// which never heard of it, is ended so that it lets go of the ledger row; and B loads
/// on the retry, the attempt counted as a database fault, not a death.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_black_holed_during_copy_is_given_up_by_the_tcp_user_timeout() -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    let proxy = TcpProxy::narrow(&server(&bench)).await?;
    let through = through(&bench, &proxy);
    let separator = if through.contains('?') { '&' } else { '?' };
    let url = format!("{through}{separator}tcp_user_timeout=2");
    load_a_then_drop_b(&bench, &bench.url).await?;
    let env = [("BRONZE_FAULT", "copy"), ("BRONZE_MAX_LOAD_SECONDS", "600")];
    let mut runner = Process::runner(BIN, &bench, &url, &env)?;
    runner.paused_at("copy").await?;
    proxy.stall();
    let stalled = Instant::now();
    runner.resume()?;
    let line = runner
        .wait_for("Load failed, will retry", Duration::from_secs(60))
        .await?;
    let gave_up = stalled.elapsed();
    assert!(
        gave_up < Duration::from_secs(30),
        "gave up after {gave_up:?}"
    );
    assert!(!line.contains("did not finish within"), "{line}");
    assert_recovered(&bench, &bench.url, &expected, &runner, 0).await?;
    drop(runner);
    bench.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visibility_timeout_shorter_than_the_load_never_loads_twice() -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    load_a_then_drop_b(&bench, &bench.url).await?;
    // GIVEN a runner paused in B's merge, past the queue's visibility timeout
    let mut first = Process::runner(BIN, &bench, &bench.url, &[("BRONZE_FAULT", "merge")])?;
    first.paused_at("merge").await?;
    // WHEN a second runner gets the redelivered task
    let mut second = Process::runner(BIN, &bench, &bench.url, &[])?;
    second
        .wait_for(
            "another worker is loading this object",
            Duration::from_secs(30),
        )
        .await?;
    // THEN it backed off without loading; the first commits, and B is loaded once
    assert_eq!(
        loads_by_key(&bench.pg).await?.len(),
        1,
        "only A's load so far"
    );
    first.resume()?;
    let rows = await_verdicts(&bench.pg, 2, Duration::from_secs(60)).await?;
    await_load_queue_empty(&bench, Duration::from_secs(30)).await?;
    assert!(rows.iter().all(|r| r.status == "loaded"), "{rows:?}");
    let b = rows.iter().find(|r| r.key == B).ok_or("no B")?;
    assert_eq!(
        (b.attempts, b.deaths),
        (1, 0),
        "the busy delivery is no attempt: {b:?}"
    );
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 2, "one load per file");
    assert!(table_snapshot(&bench.pg, TABLE).await? == expected);
    drop((first, second));
    bench.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_found_done_by_the_retry() -> Result {
    let expected = clean_run(TABLE, &files()).await?;
    let bench = orders_bench(VISIBILITY).await?;
    let proxy = TcpProxy::start(&server(&bench)).await?;
    let url = through(&bench, &proxy);
    load_a_then_drop_b(&bench, &bench.url).await?;
    // GIVEN the runner about to commit B, with a budget of 10 s (room for a loaded
    // machine to get there before it runs out)
    let env = [
        ("BRONZE_FAULT", "commit"),
        ("BRONZE_MAX_LOAD_SECONDS", "10"),
    ];
    let mut runner = Process::runner(BIN, &bench, &url, &env)?;
    runner.paused_at("commit").await?;
    // WHEN the COMMIT reaches the server but its answer never comes back
    proxy.stall_replies();
    runner.resume()?;
    // THEN the attempt gives up not knowing; the retry finds B loaded and does nothing
    runner
        .wait_for("Load failed, will retry", Duration::from_secs(30))
        .await?;
    runner
        .wait_for("Object already handled", Duration::from_secs(30))
        .await?;
    let rows = await_verdicts(&bench.pg, 2, Duration::from_secs(30)).await?;
    await_load_queue_empty(&bench, Duration::from_secs(30)).await?;
    let b = rows.iter().find(|r| r.key == B).ok_or("no B")?;
    assert_eq!(
        (b.status.as_str(), b.attempts, b.deaths),
        ("loaded", 1, 0),
        "{b:?}"
    );
    assert!(b.error.is_none(), "{b:?}");
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 2, "one load per file");
    assert!(table_snapshot(&bench.pg, TABLE).await? == expected);
    drop(runner);
    bench.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_whose_handled_message_was_redelivered_meanwhile_goes_on() -> Result {
    let bench = orders_bench(VISIBILITY).await?;
    load_a_then_drop_b(&bench, &bench.url).await?;
    // GIVEN a runner that committed B and is paused before deleting its message, past
    // the visibility timeout, and a second runner that got the message again
    let mut first = Process::runner(BIN, &bench, &bench.url, &[("BRONZE_FAULT", "committed")])?;
    first.paused_at("committed").await?;
    let mut second = Process::runner(BIN, &bench, &bench.url, &[])?;
    second
        .wait_for("Object already handled", Duration::from_secs(30))
        .await?;
    second.kill()?;
    // WHEN the first deletes the message with its old receipt handle, and a new file comes
    first.resume()?;
    let c = "acme/orders/c.csv";
    bench.put(c, orders_a(10)).await?;
    // THEN the first runner is still there and loads it
    let rows = await_verdicts(&bench.pg, 3, Duration::from_secs(30))
        .await
        .map_err(|e| format!("{e}\nfirst runner:\n{}", first.log()))?;
    assert!(rows.iter().all(|r| r.status == "loaded"), "{rows:?}");
    assert_eq!(loads_by_key(&bench.pg).await?.len(), 3);
    drop(first);
    bench.finish().await
}
