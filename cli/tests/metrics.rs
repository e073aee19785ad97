//! `bronze run --metrics-addr`: Prometheus counters that rise with a load, and a health
//! check that turns 503 when the database is down, scraped over real HTTP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bronze_tests::{Bench, Result};

/// A free port on the loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET path` over HTTP/1.1; (status, body), or `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// Polls `path` until `done` holds of its answer, for at most 30 s.
fn wait_for(port: u16, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((status, body)) = get(port, path) {
            if done(status, &body) || Instant::now() > deadline {
                return (status, body);
            }
        }
        assert!(Instant::now() < deadline, "{path} never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn runner(bench: &Bench, database_url: &str, port: u16, log: &std::path::Path) -> Runner {
    let prefix = &bench.settings.queue_prefix;
    let child = Command::new(env!("CARGO_BIN_EXE_bronze"))
        .args([
            "run",
            "--bucket",
            &bench.settings.bucket,
            "--queue-prefix",
            prefix,
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("BRONZE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("a log file"))
        .spawn()
        .expect("bronze run starts");
    Runner(child)
}

#[tokio::test]
async fn metrics_rise_with_a_load_and_health_turns_503_without_the_database() -> Result {
    let bench = Bench::new(30).await?;
    let port = free_port();
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("runner-{port}.log"));
    let _up = runner(&bench, &bench.url, port, &log);
    let (status, _) = wait_for(port, "/health", |s, _| s == 200);
    assert_eq!(status, 200);
    bench.put("acme/orders/a.csv", "id,v\n1,x\n2,y\n").await?;
    let labels = "function=\"load\",tenant=\"acme\",dataset=\"orders\"";
    let inserted = format!("bronze_records_inserted_total{{{labels}}} 2");
    let (_, metrics) = wait_for(port, "/metrics", |_, body| body.contains(&inserted));
    assert!(metrics.contains(&inserted), "{metrics}");
    assert!(
        metrics.contains(&format!("bronze_objects_loaded_total{{{labels}}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE bronze_load_duration_seconds histogram"));
    // The object's log line carries what names it: object, key, tenant, dataset, load.
    let logged = std::fs::read_to_string(&log)?;
    let line = logged
        .lines()
        .find(|l| l.contains("Object loaded."))
        .expect("a line for the object");
    let line: serde_json::Value = serde_json::from_str(line)?;
    let span = &line["span"];
    assert_eq!(span["key"], "acme/orders/a.csv", "{line}");
    assert_eq!(
        (span["tenant"].as_str(), span["dataset"].as_str()),
        (Some("acme"), Some("orders"))
    );
    assert!(
        span["object_id"].is_u64() && span["load_id"].is_u64(),
        "{line}"
    );

    let down_port = free_port();
    let down_log = log.with_extension("down.log");
    let _down = runner(
        &bench,
        "postgres://postgres@127.0.0.1:1/postgres",
        down_port,
        &down_log,
    );
    let (status, body) = wait_for(down_port, "/health", |s, _| s == 503);
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(report["healthy"], false);
    assert!(report["database"].is_string(), "{report}");
    bench.finish().await
}
