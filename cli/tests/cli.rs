//! The `bronze` command's contract, run as the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

use bronze_tests::{connect, with_dbname, Result};

fn bronze(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bronze"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the bronze binary runs")
}

fn file(name: &str, content: &[u8]) -> PathBuf {
    // Under target/: a scratch place cargo owns, not left behind in /tmp.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bronze-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn parse_prints_csv_records_as_ndjson_strings() {
    let path = file(
        "a.csv",
        b"id,name,zip\r\n007,\"Smith, J\",\r\n2,\"two\nlines\",00501\r\n",
    );
    let out = bronze(&["parse", path.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"id\":\"007\",\"name\":\"Smith, J\",\"zip\":\"\"}\n{\"id\":\"2\",\"name\":\"two\\nlines\",\"zip\":\"00501\"}\n"
    );
}

#[test]
fn parse_keeps_json_types_and_number_text() {
    let path = file(
        "b.jsonl",
        b"{\"b\":1.50,\"a\":[true,null,{\"y\":1e3,\"x\":\"\\u00e9\"}]}\n",
    );
    let out = bronze(&["parse", path.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"a\":[true,null,{\"x\":\"é\",\"y\":1e3}],\"b\":1.50}\n"
    );
}

#[test]
fn malformed_input_exits_1_with_file_line_and_reason() {
    // (file, content, first stderr line after the path, good records printed)
    let cases: [(&str, &[u8], &str, usize); 4] = [
        (
            "ragged.csv",
            b"a,b\n1,2\n3\n4,5\n",
            ":3: expected 2 fields as in the header, found 1",
            2,
        ),
        (
            "bad.ndjson",
            b"{\"a\":1}\n{\"a\":}\n{\"a\":3}\n",
            ":2: column 6: unexpected '}', expected a JSON value",
            2,
        ),
        (
            "latin1.csv",
            b"name\ncaf\xc3\xa9\ncaf\xe9\ntea\n",
            ":3: column \"name\": invalid UTF-8 at byte 3 of the value",
            2,
        ),
        (
            "array.ndjson",
            b"[1,2]\n{}\n",
            ":1: expected a JSON object",
            1,
        ),
    ];
    for (name, content, message, good) in cases {
        let path = file(name, content);
        let out = bronze(&["parse", path.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = text(&out.stderr);
        let mut lines = stderr.lines();
        let located = format!("{}{message}", path.display());
        assert_eq!(lines.next(), Some(located.as_str()), "{name}");
        let summary = format!("{}: 1 bad record(s)", path.display());
        assert_eq!(lines.next(), Some(summary.as_str()), "{name}");
        assert_eq!(
            text(&out.stdout).lines().count(),
            good,
            "{name}: the good records are kept"
        );
    }
    let truncated = file("cut.csv.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0x4b]);
    let out = bronze(&["parse", truncated.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let expected = format!(
        "{}:1: unexpected end of file (truncated?)",
        truncated.display()
    );
    assert_eq!(text(&out.stderr).trim_end(), expected);
    let out = bronze(&["parse", "/nonexistent/x.csv"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("/nonexistent/x.csv: "));
}

#[tokio::test]
async fn ingest_loads_a_local_file_and_prints_the_counts() -> Result {
    let admin = std::env::var("DATABASE_URL").unwrap_or_else(|_| bronze::db::LOCAL_URL.into());
    let name = format!("bronze_cli_{}", std::process::id());
    let admin_client = connect(&admin).await?;
    let drop_db = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    admin_client.batch_execute(&drop_db).await?;
    admin_client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = with_dbname(&admin, &name);
    let path = file("orders.csv", b"id,amount\n1,10\n2,20\n2,20\n");
    let args = [
        "ingest",
        path.to_str().unwrap(),
        "--tenant",
        "acme",
        "--dataset",
        "orders",
    ];

    let first = bronze(&args, &[("DATABASE_URL", &url)]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let counts: serde_json::Value = serde_json::from_slice(&first.stdout)?;
    assert_eq!(
        (counts["records"].as_i64(), counts["inserted"].as_i64()),
        (Some(3), Some(2))
    );
    let again = bronze(&args, &[("DATABASE_URL", &url)]);
    let counts: serde_json::Value = serde_json::from_slice(&again.stdout)?;
    assert_eq!(
        (counts["inserted"].as_i64(), counts["unchanged"].as_i64()),
        (Some(0), Some(3))
    );

    // A pipe cannot be read a second time: its payloads are staged in its one read.
    let mut piped = Command::new(env!("CARGO_BIN_EXE_bronze"))
        .args([
            "ingest",
            "/dev/stdin",
            "--tenant",
            "acme",
            "--dataset",
            "orders",
        ])
        .env("DATABASE_URL", &url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = piped.stdin.take().expect("stdin is piped");
    std::io::Write::write_all(&mut stdin, b"id,amount\n1,10\n2,25\n3,30\n")?;
    drop(stdin);
    let piped = piped.wait_with_output()?;
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    let counts: serde_json::Value = serde_json::from_slice(&piped.stdout)?;
    let seen = ["inserted", "updated", "unchanged"].map(|k| counts[k].as_i64());
    assert_eq!(
        seen,
        [Some(2), Some(0), Some(1)],
        "no key: a changed record is new"
    );

    // Without checks a first file fills its new table under no schema version.
    let plain = file("plain.csv", b"id\n1\n2\n");
    let unchecked = bronze(
        &[
            "ingest",
            plain.to_str().unwrap(),
            "--tenant",
            "acme",
            "--dataset",
            "plain",
            "--no-checks",
        ],
        &[("DATABASE_URL", &url)],
    );
    assert!(unchecked.status.success(), "{}", text(&unchecked.stderr));

    let bad = bronze(
        &["ingest", "x.csv", "--tenant", "acme;drop", "--dataset", "d"],
        &[("DATABASE_URL", &url)],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("tenant name \"acme;drop\""));
    // One spelling per tenant: upper case is refused, not folded (docs/security.md).
    let upper = bronze(
        &["ingest", "x.csv", "--tenant", "Acme", "--dataset", "d"],
        &[("DATABASE_URL", &url)],
    );
    assert_eq!(upper.status.code(), Some(1));
    assert!(
        text(&upper.stderr).contains("write it as \"acme\""),
        "{}",
        text(&upper.stderr)
    );

    let db = connect(&url).await?;
    let rows: i64 = db
        .query_one("SELECT count(*) FROM tenant_acme.orders", &[])
        .await?
        .get(0);
    assert_eq!(rows, 4);
    let amounts: Vec<String> = db
        .query(
            "SELECT payload->>'amount' FROM tenant_acme.orders ORDER BY version, payload->>'id', payload->>'amount'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(amounts, ["10", "20", "25", "30"]);
    let filled: bool = db
        .query_one(
            "SELECT count(*) = 2 AND bool_and(schema_version = 0 AND validated IS NULL)
                    AND (SELECT relpages > 0 AND relallvisible = relpages FROM pg_class
                         WHERE oid = 'tenant_acme.plain'::regclass)
             FROM tenant_acme.plain",
            &[],
        )
        .await?
        .get(0);
    assert!(filled, "filled frozen, version 0, not validated");
    drop(db);
    admin_client.batch_execute(&drop_db).await?;
    Ok(())
}

#[test]
fn parse_reads_every_format_dialect_and_encoding() {
    let mut utf16 = vec![0xff, 0xfe];
    for unit in "a\tb\r\n1\tcafé\r\n".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("semicolon.csv", b"a;b\n1,5;x\n".to_vec(), "{\"a\":\"1,5\",\"b\":\"x\"}\n"),
        (
            "headerless.csv",
            b"1,Ada\n2,Grace\n".to_vec(),
            "{\"column_1\":\"1\",\"column_2\":\"Ada\"}\n{\"column_1\":\"2\",\"column_2\":\"Grace\"}\n",
        ),
        ("latin1.csv", b"name\ncaf\xe9 \x80\n".to_vec(), "{\"name\":\"café €\"}\n"),
        ("utf16.tsv", utf16, "{\"a\":\"1\",\"b\":\"café\"}\n"),
        ("pipes.txt", b"a|b\n1|2\n".to_vec(), "{\"a\":\"1\",\"b\":\"2\"}\n"),
        ("doc.json", b"[\n {\"b\": 1},\n {\"a\": [2]}\n]\n".to_vec(), "{\"b\":1}\n{\"a\":[2]}\n"),
        ("one.json", b"{\n  \"a\": {\"z\": 1, \"y\": 2}\n}\n".to_vec(), "{\"a\":{\"y\":2,\"z\":1}}\n"),
        ("lines", b"{\"a\":1}\n{\"a\":2}\n".to_vec(), "{\"a\":1}\n{\"a\":2}\n"),
    ];
    for (name, content, expected) in cases {
        let path = file(name, &content);
        let out = bronze(&["parse", path.to_str().unwrap()], &[]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), expected, "{name}");
    }
    let not_json = file("broken.json", b"id,name\n1,Ada\n");
    let out = bronze(&["parse", not_json.to_str().unwrap()], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a .json file is never read as CSV"
    );
    let expected = format!(
        "{}:1: expected a JSON array or object, found 'i'",
        not_json.display()
    );
    assert_eq!(text(&out.stderr).trim_end(), expected);
    let pinned = bronze(
        &["parse", not_json.to_str().unwrap(), "--format", "csv"],
        &[],
    );
    assert_eq!(text(&pinned.stdout), "{\"id\":\"1\",\"name\":\"Ada\"}\n");
}

#[test]
fn infer_describes_every_column_of_the_whole_file() {
    let mut csv = String::from("id;zip;born;email;score\n");
    for i in 0..2000 {
        csv.push_str(&format!(
            "{i};{:05};{:02}/03/1990;u{i}@example.com;{}.5\n",
            i % 1000,
            1 + i % 28,
            i
        ));
    }
    csv.push_str("2000;00501;25/12/1990;nobody;x\n");
    let path = file("people.csv", csv.as_bytes());
    let out = bronze(&["infer", path.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format"], "csv");
    assert_eq!(
        (report["delimiter"].as_str(), report["header"].as_bool()),
        (Some(";"), Some(true))
    );
    assert_eq!(
        (report["encoding"].as_str(), report["records"].as_u64()),
        (Some("utf-8"), Some(2001))
    );
    let col = |i: usize| report["columns"][i].clone();
    assert_eq!(
        (col(0)["name"].as_str(), col(0)["type"].as_str()),
        (Some("id"), Some("integer"))
    );
    assert_eq!(
        (col(0)["min"].as_str(), col(0)["max"].as_str()),
        (Some("0"), Some("2000"))
    );
    assert_eq!(
        col(1)["type"],
        "string",
        "zips with leading zeros stay text"
    );
    assert_eq!(col(1)["semantic"]["type"], "zip");
    assert_eq!(col(2)["type"], "date");
    assert_eq!(
        col(2)["formats"],
        serde_json::json!(["%d/%m/%Y"]),
        "day 13.. settles it"
    );
    assert_eq!(col(3)["semantic"]["type"], "email");
    assert_eq!(col(3)["semantic"]["confidence"], 0.9995);
    assert_eq!(col(4)["type"], "string");
    assert_eq!(col(4)["almost"]["type"], "number");
    assert_eq!(
        col(4)["almost"]["first_offending_lines"],
        serde_json::json!([2002])
    );
}
