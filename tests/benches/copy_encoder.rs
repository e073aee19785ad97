//! Which binary COPY encoder bronze should use: `tokio_postgres`'s `BinaryCopyInWriter`
//! or its own `CopyEncoder`. Both COPY the same staging rows (64-char key, 32-byte
//! hash, ~330-byte JSON payload as text, line, two NULLs) into the same temporary table over
//! the same connection. Prints wall time and this process's CPU time for each; run
//! with `cargo bench -p bronze-tests --bench copy_encoder` (uses DATABASE_URL).

use std::error::Error;
use std::time::{Duration, Instant};

use bronze::copy::CopyEncoder;
use bronze::hash::record_hash;
use futures_util::SinkExt;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

const ROWS: usize = 336_776;

struct Row {
    key: String,
    hash: Vec<u8>,
    payload: Vec<u8>,
    line: i64,
}

fn rows() -> Vec<Row> {
    (0..ROWS)
        .map(|i| {
            let payload = format!(
                r#"{{"air_time":"{}","arr_delay":"{}","arr_time":"{}","carrier":"UA","day":"{}","dep_delay":"{}","dep_time":"{}","dest":"IAH","distance":"1400","flight":"{}","hour":"5","minute":"15","month":"{}","origin":"EWR","sched_arr_time":"819","sched_dep_time":"515","tailnum":"N{:05}","time_hour":"2013-01-01T10:00:00Z","year":"2013"}}"#,
                100 + i % 300, i % 60, 800 + i % 400, 1 + i % 28, i % 90, 500 + i % 900, i % 5000, 1 + i % 12, i % 99_999
            )
            .into_bytes();
            let hash = record_hash(&payload);
            Row { key: hex::encode(hash), hash: hash.to_vec(), payload, line: i as i64 + 2 }
        })
        .collect()
}

/// This process's user + system CPU time, from /proc (in clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

const STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS staging (
    record_key text, record_hash bytea, payload text, source_line bigint, reject text, raw text);
    TRUNCATE staging";
const COPY: &str = "COPY staging FROM STDIN (FORMAT binary)";

async fn with_writer(client: &Client, rows: &[Row]) -> Result<u64, Box<dyn Error>> {
    client.batch_execute(STAGING).await?;
    let sink = client.copy_in(COPY).await?;
    let types = [
        Type::TEXT,
        Type::BYTEA,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    let none: Option<&str> = None;
    for row in rows {
        let payload = std::str::from_utf8(&row.payload)?;
        writer
            .as_mut()
            .write(&[&row.key, &row.hash, &payload, &row.line, &none, &none])
            .await?;
    }
    Ok(writer.finish().await?)
}

async fn with_encoder(client: &Client, rows: &[Row]) -> Result<u64, Box<dyn Error>> {
    client.batch_execute(STAGING).await?;
    let sink = client.copy_in(COPY).await?;
    futures_util::pin_mut!(sink);
    let mut encoder = CopyEncoder::default();
    for row in rows {
        encode(&mut encoder, row);
        if let Some(chunk) = encoder.take_full() {
            sink.send(chunk).await?;
        }
    }
    sink.send(encoder.finish()).await?;
    Ok(sink.finish().await?)
}

/// One staging row, as the pipeline encodes it.
fn encode(encoder: &mut CopyEncoder, row: &Row) {
    encoder.row(6);
    encoder.text(row.key.as_bytes());
    encoder.bytea(&row.hash);
    encoder.text(&row.payload);
    encoder.int8(row.line);
    encoder.null();
    encoder.null();
}

fn encode_only(rows: &[Row]) -> usize {
    let mut encoder = CopyEncoder::default();
    let mut bytes = 0;
    for row in rows {
        encode(&mut encoder, row);
        if let Some(chunk) = encoder.take_full() {
            bytes += chunk.len();
        }
    }
    bytes + encoder.finish().len()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| bronze::db::LOCAL_URL.into());
    let client = bronze_tests::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    let rows = rows();
    let mut results: Vec<(&str, Vec<(Duration, Duration)>)> = vec![
        ("BinaryCopyInWriter", Vec::new()),
        ("CopyEncoder", Vec::new()),
        ("CopyEncoder, encoding only", Vec::new()),
    ];
    for _ in 0..3 {
        for (i, (_, runs)) in results.iter_mut().enumerate() {
            let (wall, cpu) = (Instant::now(), cpu_time());
            match i {
                0 => assert_eq!(with_writer(&client, &rows).await?, ROWS as u64),
                1 => assert_eq!(with_encoder(&client, &rows).await?, ROWS as u64),
                _ => assert!(encode_only(&rows) > 0),
            }
            runs.push((wall.elapsed(), cpu_time() - cpu));
        }
    }
    let baseline = median(&results[0].1);
    println!("| encoder ({ROWS} rows, median of 3) | wall s | client CPU s | rows/s | wall × writer | CPU × writer |");
    println!("|---|---|---|---|---|---|");
    for (name, runs) in &results {
        let (wall, cpu) = median(runs);
        println!(
            "| {name} | {:.3} | {:.3} | {:.0} | {:.2} | {:.2} |",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            ROWS as f64 / wall.as_secs_f64(),
            wall.as_secs_f64() / baseline.0.as_secs_f64(),
            cpu.as_secs_f64() / baseline.1.as_secs_f64(),
        );
    }
    Ok(())
}

fn median(runs: &[(Duration, Duration)]) -> (Duration, Duration) {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    let mut cpus: Vec<Duration> = runs.iter().map(|r| r.1).collect();
    walls.sort();
    cpus.sort();
    (walls[walls.len() / 2], cpus[cpus.len() / 2])
}
