//! Bad input through the whole pipeline: bad records land in `bronze.rejects` with
//! their line and reason and the good ones load; a file that cannot be read at all is
//! rejected whole, with the line, and writes nothing.

use std::io::Write;
use std::time::SystemTime;

use bronze::pipeline::LoadError;
use bronze_tests::{load_bytes, tolerate, Result, TestDb};
use flate2::write::GzEncoder;
use flate2::Compression;

async fn rejects(db: &TestDb) -> Result<Vec<(i64, String)>> {
    let rows = db
        .pg
        .query("SELECT line, reason FROM bronze.rejects ORDER BY id", &[])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// (file, content, good records, (line, reason) of the reject)
type Case = (&'static str, &'static [u8], i64, (i64, &'static str));

#[tokio::test]
async fn bad_records_are_rejected_and_the_rest_load() -> Result {
    let db = TestDb::new().await?;
    let cases: [Case; 6] = [
        (
            "ragged.csv",
            b"a,b\n1,2\n3\n4,5\n",
            2,
            (3, "expected 2 fields as in the header, found 1"),
        ),
        (
            "utf8.csv",
            b"name\ncaf\xc3\xa9\ncaf\xe9\ntea\n",
            2,
            (3, "column \"name\": invalid UTF-8 at byte 3 of the value"),
        ),
        (
            "lines.ndjson",
            b"{\"a\":1}\n{\"a\":\n{\"a\":3}\n",
            2,
            (
                2,
                "column 6: unexpected end of input, expected a JSON value",
            ),
        ),
        (
            "huge.ndjson",
            b"{\"a\":1}\n{\"a\":1e131072}\n{\"a\":3}\n",
            2,
            (
                2,
                "column 6: number 1e131072 is beyond what PostgreSQL can store \
                 (jsonb holds up to 131072 digits before the point and 16383 after)",
            ),
        ),
        (
            "nul.ndjson",
            b"{\"a\":\"x\\u0000y\"}\n{\"a\":2}\n{\"a\":3}\n",
            2,
            (1, "column 14: \\u0000, which PostgreSQL jsonb cannot store"),
        ),
        (
            "quote.csv",
            b"a,b\n1,2\n3,\"open\n4,5\n",
            2,
            (
                3,
                "unclosed quote: the quote opened on line 3 runs to the end of the file; \
                 line 3 is rejected and reading goes on at line 4",
            ),
        ),
    ];
    for (i, (name, bytes, good, reject)) in cases.into_iter().enumerate() {
        let dataset = format!("d{i}");
        tolerate(&db, &dataset).await?;
        let loaded = load_bytes(&db, &dataset, name, SystemTime::now(), bytes).await??;
        assert_eq!(
            (loaded.counts.inserted, loaded.counts.rejected),
            (good, 1),
            "{name}"
        );
        let rows = db
            .count(&format!("SELECT count(*) FROM tenant_acme.{dataset}"))
            .await?;
        assert_eq!(rows, good, "{name}: the good records are stored");
        let all = rejects(&db).await?;
        assert_eq!(all.last(), Some(&(reject.0, reject.1.to_owned())), "{name}");
    }
    db.finish().await
}

#[tokio::test]
async fn unreadable_files_are_rejected_whole_with_the_line() -> Result {
    let db = TestDb::new().await?;
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(b"a,b\n1,2\n3,4\n")?;
    let mut truncated = gzip.finish()?;
    truncated.truncate(truncated.len() - 10);
    let mut deep = b"[".repeat(200);
    deep.extend_from_slice(&b"]".repeat(200));
    let mut deep_doc = b"[{\"a\":".to_vec();
    deep_doc.extend_from_slice(&deep);
    deep_doc.extend_from_slice(b"}]");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage.csv",
            vec![0x00, 0x9f, 0x13, 0x37, 0x00, 0xff, 0x10, 0x00],
            "line 1: binary data (it holds NUL bytes), not text",
        ),
        (
            "archive.csv",
            b"PK\x03\x04rest".to_vec(),
            "line 1: a zip archive, not text",
        ),
        (
            "cut.csv.gz",
            truncated,
            "line 3: unexpected end of file (truncated?)",
        ),
        (
            "doc.json",
            b"[\n{\"a\":1},\n{\"a\":tru}\n]".to_vec(),
            "line 3: column 6: unexpected 't', expected a JSON value",
        ),
        (
            "deep.json",
            deep_doc,
            "line 1: column 134: nesting deeper than 128 levels",
        ),
    ];
    for (name, bytes, reason) in cases {
        let verdict = load_bytes(&db, "files", name, SystemTime::now(), &bytes).await?;
        match verdict {
            Err(e @ LoadError::Rejected { .. }) => {
                assert!(e.to_string().starts_with(reason), "{name}: {e}");
            }
            other => panic!("{name}: expected a rejection, got {other:?}"),
        }
    }
    let table: Option<String> = db
        .pg
        .query_one("SELECT to_regclass('tenant_acme.files')::text", &[])
        .await?
        .get(0);
    assert_eq!(table, None, "a rejected file writes nothing");
    db.finish().await
}
