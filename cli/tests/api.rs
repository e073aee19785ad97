//! The records API end to end: `bronze serve` as a process, driven by curl (a real HTTP
//! client: chunked streams, presigned PUTs), over data loaded by the real pipeline
//! into the real PostgreSQL, and writes that land through the bucket (moto or
//! LocalStack) and the real dispatch and load handlers.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bronze::keys::Destination;
use bronze::store::DatasetSettings;
use bronze_tests::{connect, load_for, Bench, Result, TestDb};
use serde_json::{json, Value};

const TOKENS: &str = "acme=tok-acme,globex=tok-globex";

/// 2026-01-01T00:00:00Z and 2026-02-01T00:00:00Z: the two files' last-modified times.
const T1: u64 = 1_767_225_600;
const T2: u64 = 1_769_904_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A free port on the loopback.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `bronze serve` on a port of its own, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(database_url: &str, bucket: &str) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new(env!("CARGO_BIN_EXE_bronze"))
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--bucket",
                bucket,
            ])
            .env("DATABASE_URL", database_url)
            .env("BRONZE_API_TOKENS", TOKENS)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("bronze serve never listened".into())
    }

    /// One request with curl: (status, content type, body).
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
        headers: &[&str],
    ) -> Result<Reply> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", method, "-w", "\n%{http_code} %{content_type}"]);
        if let Some(token) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        for h in headers {
            cmd.args(["-H", h]);
        }
        if let Some((content_type, _)) = body {
            cmd.args([
                "-H",
                &format!("content-type: {content_type}"),
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(format!("{}{path}", self.base));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn()?;
        let mut stdin = child.stdin.take().ok_or("curl stdin")?;
        if let Some((_, bytes)) = body {
            std::io::Write::write_all(&mut stdin, bytes)?;
        }
        drop(stdin);
        let out = child.wait_with_output()?;
        let text = String::from_utf8(out.stdout)?;
        let (body, tail) = text.rsplit_once('\n').ok_or("curl printed no status")?;
        let (status, content_type) = tail.split_once(' ').unwrap_or((tail, ""));
        Ok(Reply {
            status: status.parse()?,
            content_type: content_type.to_owned(),
            body: body.to_owned(),
        })
    }

    fn get(&self, path: &str) -> Result<Reply> {
        self.call("GET", path, Some("tok-acme"), None, &[])
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `data.id` of each record of a page, in order.
    fn ids(&self) -> Vec<i64> {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["data"]["id"].as_i64().expect("id"))
            .collect()
    }

    /// A problem document with this status, about `field` (`""`: about none).
    fn problem(&self, status: u16, field: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["status"], status);
        let expected = if field.is_empty() {
            Value::Null
        } else {
            json!(field)
        };
        assert_eq!(problem["field"], expected, "{problem}");
        problem
    }
}

fn ndjson(rows: &[Value]) -> Vec<u8> {
    rows.iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        .into_bytes()
}

async fn keyed(db: &TestDb, tenant: &str, dataset: &str, snapshot: bool) -> Result {
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let settings = DatasetSettings {
        key_columns: vec!["id".to_owned()],
        snapshot,
        ..Default::default()
    };
    bronze::store::set_dataset(&mut client, &Destination::new(tenant, dataset)?, &settings).await?;
    Ok(())
}

/// The orders of the first file, then the second: 1 updated, 3 gone (a snapshot
/// delete), 6 new, the rest unchanged.
async fn orders(db: &TestDb) -> Result {
    keyed(db, "acme", "orders", true).await?;
    let first = ndjson(&[
        json!({"id": 1, "name": "alpha", "amount": 10.5, "day": "2026-01-05", "active": true}),
        json!({"id": 2, "name": "beta", "amount": 2, "day": "2026-02-01", "active": false}),
        json!({"id": 3, "name": "gamma", "amount": 100, "day": "2026-03-01", "active": true}),
        json!({"id": 4, "name": "delta", "amount": null, "day": "2026-01-20", "active": true}),
        json!({"id": 5, "name": "epsilon", "amount": 7.25, "day": "2026-02-15", "active": false}),
    ]);
    load_for(db, "acme", "orders", "a.ndjson", at(T1), &first).await??;
    let second = ndjson(&[
        json!({"id": 1, "name": "alpha", "amount": 11, "day": "2026-01-05", "active": true}),
        json!({"id": 2, "name": "beta", "amount": 2, "day": "2026-02-01", "active": false}),
        json!({"id": 4, "name": "delta", "amount": null, "day": "2026-01-20", "active": true}),
        json!({"id": 5, "name": "epsilon", "amount": 7.25, "day": "2026-02-15", "active": false}),
        json!({"id": 6, "name": "zeta", "amount": 30, "day": "2026-04-01", "active": true}),
    ]);
    load_for(db, "acme", "orders", "b.ndjson", at(T2), &second).await??;
    keyed(db, "globex", "secret", false).await?;
    load_for(
        db,
        "globex",
        "secret",
        "s.ndjson",
        at(T1),
        &ndjson(&[json!({"id": 1, "x": "theirs"})]),
    )
    .await??;
    Ok(())
}

const RECORDS: &str = "/v1/acme/datasets/orders/records";

#[tokio::test]
async fn every_operator_compares_by_the_registered_type() -> Result {
    let db = TestDb::new().await?;
    orders(&db).await?;
    let server = Server::start(&db.url, "unused")?;
    let cases: [(&str, &[i64]); 15] = [
        ("id=eq.2", &[2]),
        ("id=ne.2", &[1, 4, 5, 6]),
        // Numerically: as text "11" < "7.25".
        ("amount=gt.7.25", &[1, 6]),
        ("amount=gte.7.25", &[1, 5, 6]),
        ("amount=lt.7.25", &[2]),
        ("amount=lte.2", &[2]),
        ("id=in.(1,5)", &[1, 5]),
        ("name=like.*ta", &[2, 4, 6]),
        ("name=ilike.ALP*", &[1]),
        ("amount=is_null", &[4]),
        ("amount=is_not_null", &[1, 2, 5, 6]),
        ("day=gte.2026-02-01", &[2, 5, 6]),
        ("day=lt.2026-01-21", &[1, 4]),
        ("active=eq.true", &[1, 4, 6]),
        ("day=gte.2026-01-01&amount=lt.20&active=eq.false", &[2, 5]),
    ];
    for (query, expected) in cases {
        let mut ids = server.get(&format!("{RECORDS}?{query}"))?.ids();
        ids.sort_unstable();
        assert_eq!(ids, expected, "{query}");
    }
    db.finish().await
}

#[tokio::test]
async fn pages_counts_streams_keys_history_and_time_travel() -> Result {
    let db = TestDb::new().await?;
    orders(&db).await?;
    let server = Server::start(&db.url, "unused")?;

    // Order by a number, descending, nulls last; two per page, by cursor.
    let mut seen = Vec::new();
    let mut path = format!("{RECORDS}?order=amount.desc&limit=2&select=id,amount");
    loop {
        let page = server.get(&path)?;
        seen.extend(page.ids());
        let body = page.json();
        assert_eq!(
            body["records"][0]["data"].as_object().map(|o| o.len()),
            Some(2),
            "select"
        );
        match body["next"].as_str() {
            Some(next) => {
                path = format!("{RECORDS}?order=amount.desc&limit=2&select=id,amount&cursor={next}")
            }
            None => break,
        }
    }
    assert_eq!(seen, [6, 1, 5, 2, 4]);

    // Counts, exact and planned (query parameter or Prefer header).
    let exact = server.get(&format!("{RECORDS}/count?amount=gt.5"))?.json();
    assert_eq!(exact, json!({"count": 3, "method": "exact"}));
    let planned = server
        .call(
            "GET",
            &format!("{RECORDS}/count"),
            Some("tok-acme"),
            None,
            &["Prefer: count=planned"],
        )?
        .json();
    assert_eq!(planned["method"], "planned");
    assert!(planned["count"].as_i64().is_some());

    // The stream: NDJSON, one payload a line, chunked.
    let stream = server.get(&format!("{RECORDS}/stream?active=eq.true"))?;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.content_type, "application/x-ndjson");
    let names: Vec<String> = stream
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a JSON line")["name"]
                .as_str()
                .expect("name")
                .to_owned()
        })
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["alpha", "delta", "zeta"]);

    // One record, plain key or stored key; lineage on request.
    let one = server.get(&format!("{RECORDS}/1?lineage=true"))?.json();
    assert_eq!(one["data"]["amount"], 11);
    assert_eq!(one["version"], 2);
    assert_eq!(one["lineage"]["change_type"], "update");
    assert_eq!(one["lineage"]["source_key"], "acme/orders/b.ndjson");
    assert_eq!(
        server.get(&format!("{RECORDS}/%5B1%5D"))?.json()["version"],
        2
    );

    // Time travel: before the update and the snapshot delete, and after.
    let before = "2026-01-15T00:00:00Z";
    assert_eq!(
        server.get(&format!("{RECORDS}/1?as_of={before}"))?.json()["data"]["amount"],
        10.5
    );
    assert_eq!(
        server.get(&format!("{RECORDS}/3?as_of={before}"))?.json()["data"]["name"],
        "gamma"
    );
    server.get(&format!("{RECORDS}/3"))?.problem(404, "");
    let mut then = server.get(&format!("{RECORDS}?as_of={before}"))?.ids();
    then.sort_unstable();
    assert_eq!(then, [1, 2, 3, 4, 5]);
    let mut now = server
        .get(&format!("{RECORDS}?as_of=2026-03-01T00:00:00%2B02:00"))?
        .ids();
    now.sort_unstable();
    assert_eq!(now, [1, 2, 4, 5, 6]);
    assert_eq!(
        server
            .get(&format!("{RECORDS}?as_of=2025-12-31T23:59:59Z"))?
            .ids(),
        Vec::<i64>::new()
    );

    // History: every version with its change type, validity, load and line.
    let history = server.get(&format!("{RECORDS}/3/history"))?.json();
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["lineage"]["change_type"], "insert");
    assert_eq!(versions[0]["lineage"]["source_line"], 3);
    assert_eq!(
        versions[0]["lineage"]["valid_to"],
        versions[1]["lineage"]["valid_from"]
    );
    assert_eq!(versions[1]["lineage"]["change_type"], "delete");
    let one = server.get(&format!("{RECORDS}/1/history"))?.json();
    let changes: Vec<&str> = one["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["lineage"]["change_type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(changes, ["insert", "update"]);

    // Datasets and schemas.
    let datasets = server.get("/v1/acme/datasets")?.json();
    let list = datasets["datasets"].as_array().expect("datasets");
    assert_eq!(list.len(), 1, "only acme's: {datasets}");
    assert_eq!(list[0]["dataset"], "orders");
    assert_eq!(list[0]["schema_version"], 1);
    assert_eq!(list[0]["last_load"]["source_key"], "acme/orders/b.ndjson");
    let schema = server.get("/v1/acme/datasets/orders/schema")?.json();
    let types: Vec<(String, String)> = schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or("").to_owned(),
                f["type"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        types.contains(&("amount".into(), "number".into())),
        "{types:?}"
    );
    assert!(types.contains(&("day".into(), "date".into())), "{types:?}");
    assert_eq!(
        server
            .get("/v1/acme/datasets/orders/schema?version=1")?
            .json()["version"],
        1
    );
    server
        .get("/v1/acme/datasets/orders/schema?version=9")?
        .problem(404, "");
    assert_eq!(
        server
            .get("/v1/acme/datasets/orders/schema/history")?
            .json()["versions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    server
        .get("/v1/acme/datasets/orders/schema/diff")?
        .problem(400, "from");
    let same = server
        .get("/v1/acme/datasets/orders/schema/diff?from=1&to=1")?
        .json();
    assert_eq!(same["changes"], json!([]));

    // The OpenAPI document, generated from the handlers.
    let doc = server
        .call("GET", "/v1/openapi.json", None, None, &[])?
        .json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/{tenant}/datasets/{dataset}/records",
        "/v1/{tenant}/datasets/{dataset}/records/stream",
        "/v1/{tenant}/objects/{id}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
    db.finish().await
}

#[tokio::test]
async fn refusals_are_problem_documents() -> Result {
    let db = TestDb::new().await?;
    orders(&db).await?;
    let server = Server::start(&db.url, "unused")?;

    // Another tenant's data: 403, whichever endpoint; no token: 401.
    for path in [
        "/v1/globex/datasets",
        "/v1/globex/datasets/secret/records",
        "/v1/globex/datasets/secret/records/1",
        "/v1/globex/datasets/secret/records/stream",
        "/v1/globex/objects/1",
    ] {
        let reply = server.get(path)?;
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
        assert_eq!(reply.content_type, "application/problem+json");
        assert!(!reply.body.contains("theirs"));
    }
    let theirs = server.call(
        "GET",
        "/v1/globex/datasets/secret/records",
        Some("tok-globex"),
        None,
        &[],
    )?;
    assert!(
        theirs.body.contains("theirs"),
        "the owner reads it: {}",
        theirs.body
    );
    assert_eq!(server.call("GET", RECORDS, None, None, &[])?.status, 401);
    assert_eq!(
        server
            .call("GET", RECORDS, Some("wrong"), None, &[])?
            .status,
        401
    );
    let post = server.call(
        "POST",
        "/v1/globex/datasets/secret/records",
        Some("tok-acme"),
        Some(("application/json", b"{}")),
        &[],
    )?;
    assert_eq!(post.status, 403, "{}", post.body);

    // Unknown fields name the known ones; values must fit their type.
    let unknown = server
        .get(&format!("{RECORDS}?colour=eq.red"))?
        .problem(400, "colour");
    let mut known: Vec<&str> = unknown["known_fields"]
        .as_array()
        .expect("known")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    known.sort_unstable();
    assert_eq!(known, ["active", "amount", "day", "id", "name"]);
    server
        .get(&format!("{RECORDS}?amount=gt.lots"))?
        .problem(400, "amount");
    server
        .get(&format!("{RECORDS}?day=lt.yesterday"))?
        .problem(400, "day");
    server
        .get(&format!("{RECORDS}?id=between.1"))?
        .problem(400, "id");
    server
        .get(&format!("{RECORDS}?name=gt.a&active=gt.true"))?
        .problem(400, "active");
    server
        .get(&format!("{RECORDS}?select=id,colour"))?
        .problem(400, "colour");
    server
        .get(&format!("{RECORDS}?order=colour.desc"))?
        .problem(400, "colour");
    server
        .get(&format!("{RECORDS}?limit=100000"))?
        .problem(400, "limit");
    server
        .get(&format!("{RECORDS}?as_of=last-tuesday"))?
        .problem(400, "as_of");
    server
        .get(&format!("{RECORDS}?cursor=nonsense"))?
        .problem(400, "cursor");
    server
        .get(&format!("{RECORDS}/count?count=roughly"))?
        .problem(400, "count");
    server.get("/v1/Acme/datasets")?.problem(400, "tenant");
    server
        .get("/v1/acme/datasets/Orders/records")?
        .problem(400, "dataset");
    let missing = server.get("/v1/acme/datasets/nothing/records")?;
    assert_eq!(missing.status, 404, "{}", missing.body);
    // A cursor of one order replayed with another.
    let page = server
        .get(&format!("{RECORDS}?limit=1&order=day.asc"))?
        .json();
    let next = page["next"].as_str().expect("a next page");
    server
        .get(&format!("{RECORDS}?limit=1&cursor={next}"))?
        .problem(400, "cursor");
    db.finish().await
}

#[tokio::test]
async fn pagination_across_a_concurrent_load_skips_and_repeats_nothing() -> Result {
    let db = TestDb::new().await?;
    keyed(&db, "acme", "orders", false).await?;
    let rows: Vec<Value> = (1..=300)
        .map(|i| json!({"id": i, "name": format!("n{i}"), "amount": i}))
        .collect();
    load_for(&db, "acme", "orders", "a.ndjson", at(T1), &ndjson(&rows)).await??;
    let server = Server::start(&db.url, "unused")?;
    let mut seen = Vec::new();
    let mut path = format!("{RECORDS}?limit=40");
    let mut pages = 0;
    loop {
        let page = server.get(&path)?;
        seen.extend(page.ids());
        pages += 1;
        if pages == 2 {
            // Between pages: every record updated (before and after the cursor) and
            // new ones added.
            let changed: Vec<Value> = (1..=330)
                .map(|i| json!({"id": i, "name": format!("m{i}"), "amount": i}))
                .collect();
            load_for(&db, "acme", "orders", "b.ndjson", at(T2), &ndjson(&changed)).await??;
        }
        match page.json()["next"].as_str() {
            Some(next) => path = format!("{RECORDS}?limit=40&cursor={next}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "a record repeated");
    assert!(
        (1..=300).all(|i| sorted.binary_search(&i).is_ok()),
        "a record skipped"
    );
    db.finish().await
}

#[tokio::test]
async fn posted_records_and_uploads_land_through_the_bucket() -> Result {
    let bench = Bench::new(30).await?;
    keyed(&bench, "acme", "orders", false).await?;
    let server = Server::start(&bench.url, &bench.settings.bucket)?;
    let body = ndjson(&[
        json!({"id": 1, "name": "alpha"}),
        json!({"id": 2, "name": "beta"}),
        json!({"id": 3, "name": "gamma"}),
    ]);
    let posted = server.call(
        "POST",
        RECORDS,
        Some("tok-acme"),
        Some(("application/x-ndjson", &body)),
        &[],
    )?;
    assert_eq!(posted.status, 202, "{}", posted.body);
    let accepted = posted.json();
    let key = accepted["key"].as_str().expect("key");
    assert!(
        key.starts_with("acme/orders/_api/") && key.ends_with(".ndjson"),
        "{key}"
    );
    let status_url = accepted["status_url"]
        .as_str()
        .expect("status_url")
        .to_owned();
    assert_eq!(server.get(&status_url)?.json()["status"], "submitted");

    // A large file: a presigned PUT, then the same path.
    let upload = server
        .call(
            "POST",
            "/v1/acme/datasets/orders/uploads?filename=more.csv",
            Some("tok-acme"),
            None,
            &[],
        )?
        .json();
    let url = upload["url"].as_str().expect("url");
    let put = Command::new("curl")
        // A content type of its own: moto reads a form-encoded body (curl's default) as
        // a form, and stores nothing.
        .args([
            "-sS",
            "-f",
            "-X",
            "PUT",
            "-H",
            "content-type: text/csv",
            "--data-binary",
            "id,name\n4,delta\n5,epsilon\n",
            url,
        ])
        .output()?;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    let (dispatcher, loader) = (bench.dispatcher(), bench.loader());
    bench.drain(&dispatcher, &loader).await?;
    let loaded = server.get(&status_url)?.json();
    assert_eq!(loaded["status"], "loaded", "{loaded}");
    assert_eq!(loaded["load"]["inserted"], 3, "{loaded}");
    let uploaded = server
        .get(upload["status_url"].as_str().expect("status_url"))?
        .json();
    assert_eq!(uploaded["load"]["inserted"], 2, "{uploaded}");
    let id = loaded["id"].as_i64().expect("ledger id");
    assert_eq!(
        server.get(&format!("/v1/acme/objects/{id}"))?.json()["key"],
        key
    );
    let names: Vec<String> = server
        .get(&format!("{RECORDS}/stream"))?
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| v["name"].as_str().unwrap_or("").to_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");

    // Refused before the bucket: not JSON, and past the body limit.
    let bad = server.call(
        "POST",
        RECORDS,
        Some("tok-acme"),
        Some(("application/x-ndjson", b"{\"id\": 1}\n{oops\n")),
        &[],
    )?;
    assert!(bad.problem(400, "body")["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("line 2")));
    let huge = vec![b' '; 7 * 1024 * 1024];
    let too_large = server.call(
        "POST",
        RECORDS,
        Some("tok-acme"),
        Some(("application/json", &huge)),
        &[],
    )?;
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    bench.finish().await
}

/// The plan of the API's page query for `query` over acme's `trips`.
async fn plan_of(db: &TestDb, query: &[(&str, &str)]) -> Result<String> {
    use bronze::api::{records_sql, Params, Shape};
    let client = connect(&db.url).await?;
    let dest = Destination::new("acme", "trips")?;
    let schema = bronze::registry::current(&client, &dest)
        .await?
        .ok_or("no schema")?
        .schema;
    let pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let indexes = bronze::store::api_indexes(&client, &dest).await?;
    let params = Params {
        containment: indexes.iter().any(|i| i == bronze::store::PAYLOAD),
        ..Params::parse(&pairs, &schema).map_err(|p| p.detail)?
    };
    let sql = records_sql(&dest, &params, Shape::Page(100), None);
    let rows = client
        .query(&format!("EXPLAIN {}", sql.text), &sql.args())
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn bronze_cli(db: &TestDb, args: &[&str]) -> Result {
    let out = Command::new(env!("CARGO_BIN_EXE_bronze"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(())
}

#[tokio::test]
async fn eq_and_ranges_use_the_datasets_indexes() -> Result {
    let db = TestDb::new().await?;
    keyed(&db, "acme", "trips", false).await?;
    // Enough rows for the planner to prefer an index where one serves.
    let rows: Vec<Value> = (0..5000)
        .map(|i| json!({"id": i, "name": format!("n{i}"), "amount": i % 97, "day": format!("2025-{:02}-{:02}", 1 + i % 12, 1 + i % 28)}))
        .collect();
    load_for(&db, "acme", "trips", "a.ndjson", at(T1), &ndjson(&rows)).await??;
    bronze_cli(
        &db,
        &[
            "datasets",
            "set",
            "acme",
            "trips",
            "--key",
            "id",
            "--api-index",
            "payload,day",
        ],
    )?;
    db.pg.batch_execute("ANALYZE tenant_acme.trips").await?;
    // eq on text: containment, served by the GIN index over the payload; on the key,
    // the typed key's own index (kept beside the API's).
    for (eq, index) in [
        (("name", "eq.n4242"), "trips$gin"),
        (("id", "eq.4242"), "trips$x"),
    ] {
        let plan = plan_of(&db, &[eq]).await?;
        assert!(plan.contains(index), "{eq:?}:\n{plan}");
    }
    // A range on an indexed field: its expression index.
    let plan = plan_of(&db, &[("day", "gte.2025-03-03"), ("day", "lt.2025-03-04")]).await?;
    assert!(plan.contains("trips$a"), "day range:\n{plan}");
    // Nothing serves a range on an unindexed number.
    let plan = plan_of(&db, &[("amount", "gt.95")]).await?;
    assert!(
        !plan.contains("trips$gin") && !plan.contains("trips$a"),
        "amount:\n{plan}"
    );
    // The answers are the same as without the indexes.
    let server = Server::start(&db.url, "unused")?;
    let path = "/v1/acme/datasets/trips/records";
    assert_eq!(server.get(&format!("{path}?name=eq.n4242"))?.ids(), [4242]);
    assert_eq!(server.get(&format!("{path}?id=eq.4242"))?.ids(), [4242]);
    let count = server
        .get(&format!(
            "{path}/count?day=gte.2025-03-03&day=lt.2025-03-04"
        ))?
        .json();
    let expected = (0..5000)
        .filter(|i| 1 + i % 12 == 3 && 1 + i % 28 == 3)
        .count();
    assert_eq!(count["count"], expected);
    // Left out of `datasets set`, they are dropped.
    bronze_cli(&db, &["datasets", "set", "acme", "trips", "--key", "id"])?;
    let left = db
        .count("SELECT count(*) FROM pg_indexes WHERE indexname IN ('trips$gin') OR indexname LIKE 'trips$a%'")
        .await?;
    assert_eq!(left, 0);
    db.finish().await
}
