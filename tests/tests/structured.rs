//! Structured storage: `<dataset>_typed` as a table kept by every load, in the load's
//! transaction, through schema changes and storage switches; and the indexes of both
//! storages, proven by EXPLAIN. Every check compares the typed relation with what the
//! view's SELECT gives over the bronze table at that moment, row by row.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bronze::keys::Destination;
use bronze::pipeline::{self, Loaded, Options};
use bronze::registry;
use bronze::store::{self, DatasetSettings, Lineage};
use bronze::typed::{self, Storage};
use bronze_tests::{as_role, connect, load_bytes, InMemory, Result, TestDb};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

fn dest(dataset: &str) -> Destination {
    Destination::new("acme", dataset).expect("a valid name")
}

async fn load(db: &TestDb, dataset: &str, name: &str, ts: u64, text: &str) -> Result<Loaded> {
    Ok(load_bytes(db, dataset, name, at(ts), text.as_bytes()).await??)
}

/// Loads through the pipeline with `options`, connected to `url`.
async fn load_with(
    url: &str,
    dataset: &str,
    name: &str,
    ts: u64,
    text: &str,
    options: Options,
) -> Result<Loaded> {
    let mut client = connect(url).await?;
    let tx = client.transaction().await?;
    let lineage = Lineage {
        bucket: Some("bucket".into()),
        key: format!("acme/{dataset}/{name}"),
        version_id: None,
        etag: None,
        source_ts: at(ts),
    };
    let again = InMemory(text.as_bytes().to_vec());
    let source = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
    let loaded = pipeline::load_with(
        &tx,
        source,
        Some(&again),
        &dest(dataset),
        &lineage,
        None,
        options,
    )
    .await?;
    tx.commit().await?;
    Ok(loaded)
}

/// Stores `settings` and lets the typed relation follow them, as `bronze datasets set`.
async fn configure(
    db: &TestDb,
    dataset: &str,
    settings: DatasetSettings,
) -> Result<typed::Applied> {
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    store::set_dataset(&mut client, &dest(dataset), &settings).await?;
    Ok(typed::apply(&mut client, &dest(dataset)).await?)
}

fn keyed(storage: Storage) -> DatasetSettings {
    DatasetSettings {
        key_columns: vec!["id".into()],
        snapshot: true,
        storage,
        ..Default::default()
    }
}

/// `r` (table), `v` (view) or `-` (missing) for `acme.<dataset>_typed`.
async fn kind(db: &TestDb, dataset: &str) -> Result<String> {
    let row = db
        .pg
        .query_one(
            "SELECT coalesce((SELECT relkind::text FROM pg_class
                              WHERE oid = to_regclass('tenant_acme.' || $1 || '_typed')), '-')",
            &[&dataset],
        )
        .await?;
    Ok(row.get(0))
}

/// Rows of the typed table that differ from what the view's SELECT gives now (both
/// ways), compared as JSON objects so column order does not matter.
async fn differences(db: &TestDb, dataset: &str) -> Result<i64> {
    let current = registry::current(&db.pg, &dest(dataset))
        .await?
        .ok_or("a schema version")?;
    let select = typed::select_sql(&dest(dataset), &current.schema);
    let typed = format!("tenant_acme.{dataset}_typed");
    db.count(&format!(
        "SELECT count(*) FROM (
                 (SELECT to_jsonb(y) FROM {typed} y EXCEPT ALL SELECT to_jsonb(s) FROM ({select}) s)
                 UNION ALL
                 (SELECT to_jsonb(s) FROM ({select}) s EXCEPT ALL SELECT to_jsonb(y) FROM {typed} y)
             ) d"
    ))
    .await
}

/// (id, name, qty) of the typed rows, by id, as text.
async fn rows(db: &TestDb, dataset: &str) -> Result<Vec<String>> {
    let rows = db
        .pg
        .query(
            &format!(
                "SELECT concat_ws(' ', id, name, qty) FROM tenant_acme.{dataset}_typed ORDER BY id"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `column type` of the typed table's columns, in table order, lineage excluded.
async fn columns(db: &TestDb, dataset: &str) -> Result<Vec<String>> {
    let rows = db
        .pg
        .query(
            "SELECT column_name || ' ' || data_type FROM information_schema.columns
             WHERE table_schema = 'tenant_acme' AND table_name = $1 || '_typed'
               AND column_name NOT LIKE '\\_bronze\\_%' ORDER BY ordinal_position",
            &[&dataset],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn ctid(db: &TestDb, dataset: &str, id: i64) -> Result<String> {
    let row = db
        .pg
        .query_one(
            &format!("SELECT ctid::text FROM tenant_acme.{dataset}_typed WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn the_load_upserts_deletes_and_leaves_unchanged_keys() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", keyed(Storage::Structured)).await?;
    load(
        &db,
        "orders",
        "1.csv",
        1,
        "id,name,qty\n1,a,10\n2,b,20\n3,c,30\n",
    )
    .await?;
    assert_eq!(kind(&db, "orders").await?, "r");
    assert_eq!(
        columns(&db, "orders").await?,
        ["id bigint", "name text", "qty bigint"]
    );
    assert_eq!(rows(&db, "orders").await?, ["1 a 10", "2 b 20", "3 c 30"]);
    let untouched = ctid(&db, "orders", 1).await?;
    // 1 unchanged, 2 updated, 3 gone from the snapshot (deleted), 4 new.
    let loaded = load(
        &db,
        "orders",
        "2.csv",
        2,
        "id,name,qty\n1,a,10\n2,B,21\n4,d,40\n",
    )
    .await?;
    assert_eq!(
        (
            loaded.counts.inserted,
            loaded.counts.updated,
            loaded.counts.deleted
        ),
        (1, 1, 1)
    );
    assert_eq!(rows(&db, "orders").await?, ["1 a 10", "2 B 21", "4 d 40"]);
    assert_eq!(
        ctid(&db, "orders", 1).await?,
        untouched,
        "an unchanged key is not rewritten"
    );
    assert_eq!(differences(&db, "orders").await?, 0);
    // A key deleted comes back; the lineage columns follow the current version.
    load(
        &db,
        "orders",
        "3.csv",
        3,
        "id,name,qty\n1,a,10\n3,c,31\n4,d,40\n",
    )
    .await?;
    assert_eq!(rows(&db, "orders").await?, ["1 a 10", "3 c 31", "4 d 40"]);
    assert_eq!(
        db.count("SELECT _bronze_version::bigint FROM tenant_acme.orders_typed WHERE id = 3")
            .await?,
        3
    );
    assert_eq!(differences(&db, "orders").await?, 0);
    // A file that arrived late (older than the loads above) changes no current row.
    load(&db, "orders", "0.csv", 0, "id,name,qty\n1,z,0\n").await?;
    assert_eq!(rows(&db, "orders").await?, ["1 a 10", "3 c 31", "4 d 40"]);
    assert_eq!(differences(&db, "orders").await?, 0);
    db.finish().await
}

#[tokio::test]
async fn a_rolled_back_load_leaves_the_table_as_it_was() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", keyed(Storage::Structured)).await?;
    load(&db, "orders", "1.csv", 1, "id,name,qty\n1,a,10\n2,b,20\n").await?;
    let mut client = connect(&db.url).await?;
    let tx = client.transaction().await?;
    let lineage = Lineage {
        bucket: None,
        key: "acme/orders/2.csv".into(),
        version_id: None,
        etag: None,
        source_ts: at(2),
    };
    let text = "id,name,qty,extra\n1,x,11,e\n3,c,30,f\n";
    let again = InMemory(text.as_bytes().to_vec());
    let source = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
    pipeline::load(&tx, source, Some(&again), &dest("orders"), &lineage, None).await?;
    let seen: i64 = tx
        .query_one(
            "SELECT count(*) FROM tenant_acme.orders_typed WHERE extra IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(seen, 2, "inside the load the table has its rows and column");
    tx.rollback().await?;
    assert_eq!(rows(&db, "orders").await?, ["1 a 10", "2 b 20"]);
    assert_eq!(
        columns(&db, "orders").await?,
        ["id bigint", "name text", "qty bigint"]
    );
    assert_eq!(differences(&db, "orders").await?, 0);
    db.finish().await
}

#[tokio::test]
async fn added_columns_widened_types_and_breaking_changes() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", keyed(Storage::Structured)).await?;
    load(&db, "orders", "1.csv", 1, "id,name,qty\n1,a,10\n2,b,20\n").await?;
    let filenode = "SELECT pg_relation_filenode('tenant_acme.orders_typed')::bigint";
    let before = db.count(filenode).await?;

    // An added column: no rewrite, NULL in the rows the load did not write.
    load(
        &db,
        "orders",
        "2.csv",
        2,
        "id,name,qty,note\n1,a,10,\n2,b,20,\n3,c,30,hi\n",
    )
    .await?;
    assert_eq!(
        columns(&db, "orders").await?,
        ["id bigint", "name text", "qty bigint", "note text"]
    );
    assert_eq!(
        db.count(filenode).await?,
        before,
        "adding a column rewrites nothing"
    );
    assert_eq!(differences(&db, "orders").await?, 0);

    // A widened type: integer → number, altered in place.
    load(
        &db,
        "orders",
        "3.csv",
        3,
        "id,name,qty,note\n1,a,10,\n2,b,20,\n3,c,30.5,hi\n",
    )
    .await?;
    assert_eq!(
        columns(&db, "orders").await?,
        ["id bigint", "name text", "qty numeric", "note text"]
    );
    assert_eq!(rows(&db, "orders").await?, ["1 a 10", "2 b 20", "3 c 30.5"]);
    assert_eq!(differences(&db, "orders").await?, 0);

    // A breaking change (a column removed), small table: rebuilt inside the load.
    load(
        &db,
        "orders",
        "4.csv",
        4,
        "id,name,qty\n1,a,10\n2,b,20\n3,c,30.5\n",
    )
    .await?;
    assert_eq!(
        columns(&db, "orders").await?,
        ["id bigint", "name text", "qty numeric"]
    );
    assert_eq!(differences(&db, "orders").await?, 0);

    // The same on a table "too big" to rebuild in a load: the old columns stay, the rows
    // are still kept, the note says so; `bronze typed rebuild` catches up.
    let small = Options {
        limits: bronze::limits::Limits {
            typed_rebuild_rows: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    load_with(
        &db.url,
        "orders",
        "5.csv",
        5,
        "id,qty\n1,10\n2,22\n3,30.5\n",
        small,
    )
    .await?;
    assert_eq!(
        columns(&db, "orders").await?,
        ["id bigint", "name text", "qty numeric"]
    );
    assert_eq!(rows(&db, "orders").await?, ["1 10", "2 22", "3 30.5"]);
    let note: Option<String> = db
        .pg
        .query_one(
            "SELECT typed_note FROM bronze.datasets WHERE dataset = 'orders'",
            &[],
        )
        .await?
        .get(0);
    assert!(note.is_some_and(|n| n.contains("bronze typed rebuild acme orders")));
    let mut client = connect(&db.url).await?;
    let rebuilt = typed::rebuild(&mut client, &dest("orders")).await?;
    assert!(rebuilt.remade && rebuilt.note.is_none());
    assert_eq!(columns(&db, "orders").await?, ["id bigint", "qty numeric"]);
    assert_eq!(differences(&db, "orders").await?, 0);
    db.finish().await
}

#[tokio::test]
async fn switching_storage_builds_the_table_once_and_keeps_grants() -> Result {
    let db = TestDb::new().await?;
    configure(&db, "orders", keyed(Storage::Jsonb)).await?;
    load(&db, "orders", "1.csv", 1, "id,name,qty\n1,a,10\n2,b,20\n").await?;
    load(
        &db,
        "orders",
        "2.csv",
        2,
        "id,name,qty\n1,a,11\n2,b,20\n3,c,30\n",
    )
    .await?;
    assert_eq!(kind(&db, "orders").await?, "v");
    let role = format!("bronze20_analyst_{}", std::process::id());
    let admin = connect(db.admin_url()).await?;
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role}"))
        .await?;
    db.pg
        .batch_execute(&format!(
            "GRANT SELECT ON tenant_acme.orders_typed TO {role}"
        ))
        .await?;
    let readable = format!(
        "SELECT has_table_privilege('{role}', 'tenant_acme.orders_typed', 'SELECT')::int::bigint"
    );

    let applied = configure(&db, "orders", keyed(Storage::Structured)).await?;
    assert!(applied.remade);
    assert_eq!(kind(&db, "orders").await?, "r");
    assert_eq!(rows(&db, "orders").await?, ["1 a 11", "2 b 20", "3 c 30"]);
    assert_eq!(differences(&db, "orders").await?, 0);
    assert_eq!(
        db.count(&readable).await?,
        1,
        "the view's grant is the table's"
    );
    // Setting the same storage again builds nothing.
    let again = configure(&db, "orders", keyed(Storage::Structured)).await?;
    assert!(!again.remade);

    let back = configure(&db, "orders", keyed(Storage::Jsonb)).await?;
    assert!(back.remade);
    assert_eq!(kind(&db, "orders").await?, "v");
    assert_eq!(rows(&db, "orders").await?, ["1 a 11", "2 b 20", "3 c 30"]);
    assert_eq!(db.count(&readable).await?, 1);
    db.finish().await?;
    admin.batch_execute(&format!("DROP ROLE {role}")).await?;
    Ok(())
}

#[tokio::test]
async fn concurrent_loads_keep_the_table_in_step() -> Result {
    let db = TestDb::new().await?;
    configure(
        &db,
        "orders",
        DatasetSettings {
            snapshot: false,
            ..keyed(Storage::Structured)
        },
    )
    .await?;
    load(&db, "orders", "0.csv", 0, "id,name,qty\n0,zero,0\n").await?;
    let files: Vec<String> = (1..=6)
        .map(|n| {
            let mut text = String::from("id,name,qty\n");
            for id in 0..40 {
                // Overlapping keys: every file changes some of the others' rows.
                text.push_str(&format!("{},f{n},{}\n", id * n % 50, id * n));
            }
            text
        })
        .collect();
    let loads = files.iter().enumerate().map(|(i, text)| {
        let db = &db;
        async move { load(db, "orders", &format!("{i}.csv"), 10 + i as u64, text).await }
    });
    for loaded in futures_util::future::join_all(loads).await {
        loaded?;
    }
    assert_eq!(differences(&db, "orders").await?, 0);
    assert_eq!(
        db.count("SELECT count(*) FROM tenant_acme.orders_typed")
            .await?,
        db.count("SELECT count(*) FROM tenant_acme.orders WHERE is_current")
            .await?
    );
    db.finish().await
}

/// The plan of `query`, as text.
async fn plan(db: &TestDb, query: &str) -> Result<String> {
    let rows = db.pg.query(&format!("EXPLAIN {query}"), &[]).await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

#[tokio::test]
async fn key_lookups_and_indexed_columns_use_an_index_in_both_storages() -> Result {
    let db = TestDb::new().await?;
    let mut text = String::from("id,name,qty,country\n");
    for id in 0..3000 {
        text.push_str(&format!("{id},n{id},{},c{}\n", id % 7, id % 100));
    }
    for (dataset, storage) in [("viewed", Storage::Jsonb), ("kept", Storage::Structured)] {
        let settings = DatasetSettings {
            index_columns: vec!["country".into()],
            ..keyed(storage)
        };
        configure(&db, dataset, settings).await?;
        load(&db, dataset, "1.csv", 1, &text).await?;
        db.pg
            .batch_execute(&format!("ANALYZE tenant_acme.{dataset}"))
            .await?;
        if storage == Storage::Structured {
            db.pg
                .batch_execute(&format!("ANALYZE tenant_acme.{dataset}_typed"))
                .await?;
        }
        for query in [
            format!("SELECT * FROM tenant_acme.{dataset}_typed WHERE id = 1234"),
            format!("SELECT * FROM tenant_acme.{dataset}_typed WHERE country = 'c42'"),
        ] {
            let plan = plan(&db, &query).await?;
            assert!(
                plan.contains(&format!("{dataset}$x")) && !plan.contains("Seq Scan"),
                "{storage}: {query} should use bronze's index:\n{plan}"
            );
        }
        let found = db
            .count(&format!(
                "SELECT qty FROM tenant_acme.{dataset}_typed WHERE id = 1234"
            ))
            .await?;
        assert_eq!(found, 1234 % 7);
    }
    // The view's casts are inlined: no function call is left in its plan.
    let verbose = plan(
        &db,
        "VERBOSE SELECT sum(qty) FROM tenant_acme.viewed_typed WHERE id > 10",
    )
    .await?;
    assert!(!verbose.contains("bronze.try_"), "{verbose}");
    db.finish().await
}

/// Names of the indexes on `tenant_acme.<dataset>`, sorted.
async fn index_names(db: &TestDb, dataset: &str) -> Result<Vec<String>> {
    let rows = db
        .pg
        .query(
            "SELECT indexname::text FROM pg_indexes
             WHERE schemaname = 'tenant_acme' AND tablename = $1 ORDER BY 1",
            &[&dataset],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[tokio::test]
async fn api_indexes_and_typed_indexes_leave_each_other_alone() -> Result {
    let db = TestDb::new().await?;
    let mut text = String::from("id,name,qty,country\n");
    for id in 0..300 {
        text.push_str(&format!("{id},n{id},{},c{}\n", id % 7, id % 4));
    }
    configure(&db, "both", keyed(Storage::Jsonb)).await?;
    load(&db, "both", "1.csv", 1, &text).await?;
    // An API index named as they were before the typed indexes came (`$x`, four hex
    // digits) is the API's: replaced, not kept beside its new name.
    db.pg
        .batch_execute("CREATE INDEX \"both$xabcd\" ON tenant_acme.both ((payload ->> 'name'))")
        .await?;
    let client = connect(&db.url).await?;
    for _ in 0..2 {
        configure(&db, "both", keyed(Storage::Jsonb)).await?;
        store::set_api_indexes(&client, &dest("both"), &["name".into()]).await?;
    }
    let names = index_names(&db, "both").await?;
    let typed_key = names.iter().filter(|n| n.starts_with("both$x")).count();
    let api = names.iter().filter(|n| n.starts_with("both$a")).count();
    assert_eq!(
        (names.len(), typed_key, api),
        (4, 1, 1),
        "the primary key, the current rows', the typed key's and the API's: {names:?}"
    );
    assert!(!names.contains(&"both$xabcd".to_owned()), "{names:?}");
    db.finish().await
}

/// The estimated groups of `GROUP BY` over `relation`'s `column`: the top node's rows.
async fn estimated_groups(db: &TestDb, relation: &str, column: &str) -> Result<f64> {
    let plan = plan(
        db,
        &format!("SELECT {column}, count(*) FROM {relation} GROUP BY 1"),
    )
    .await?;
    let top = plan.lines().next().unwrap_or_default();
    let rows = top
        .split("rows=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .ok_or_else(|| format!("no estimate in {plan}"))?;
    Ok(rows.parse()?)
}

#[tokio::test]
async fn the_planner_knows_how_many_values_a_view_column_has() -> Result {
    let db = TestDb::new().await?;
    let mut text = String::from("id,name,qty,country\n");
    for id in 0..5000 {
        text.push_str(&format!("{id},n{id},{},c{}\n", id % 7, id % 4));
    }
    configure(&db, "grouped", keyed(Storage::Jsonb)).await?;
    load(&db, "grouped", "1.csv", 1, &text).await?;
    db.pg.batch_execute("ANALYZE tenant_acme.grouped").await?;
    // Without statistics on its expression, a column counts as many values as the
    // payloads: one per row.
    for (column, values) in [("country", 4.0), ("qty", 7.0)] {
        let groups = estimated_groups(&db, "tenant_acme.grouped_typed", column).await?;
        assert!(groups <= values * 2.0, "{column}: {groups} groups expected");
    }
    let statistics = "SELECT count(*) FROM pg_statistic_ext
                      WHERE stxrelid = 'tenant_acme.grouped'::regclass";
    assert_eq!(db.count(statistics).await?, 4);
    configure(&db, "grouped", keyed(Storage::Structured)).await?;
    assert_eq!(db.count(statistics).await?, 0);
    db.finish().await
}

#[tokio::test]
async fn the_tenant_reader_reads_the_typed_table_also_after_a_rebuild() -> Result {
    let db = TestDb::new().await?;
    let tenant = format!("t20_{}", std::process::id());
    let dest = Destination::new(&tenant, "orders")?;
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let role = bronze::tenants::create(&client, &dest.tenant).await?;
    store::set_dataset(&mut client, &dest, &keyed(Storage::Structured)).await?;
    let readable = format!(
        "SELECT has_table_privilege('{role}', 'tenant_{tenant}.orders_typed', 'SELECT')::int::bigint"
    );
    let files = [
        "id,name,qty\n1,a,10\n2,b,20\n",
        // A breaking change (a column removed): the table is built again.
        "id,qty\n1,10\n2,20\n",
    ];
    for (n, text) in files.iter().enumerate() {
        bronze_tests::load_for(
            &db,
            &tenant,
            "orders",
            &format!("{n}.csv"),
            at(n as u64),
            text.as_bytes(),
        )
        .await??;
        assert_eq!(
            kind_of(&db, &format!("tenant_{tenant}.orders_typed")).await?,
            "r"
        );
        assert_eq!(db.count(&readable).await?, 1, "after load {n}");
    }
    let admin = db.admin_url().to_owned();
    db.finish().await?;
    connect(&admin)
        .await?
        .batch_execute(&format!("DROP ROLE {role}"))
        .await?;
    Ok(())
}

async fn kind_of(db: &TestDb, relation: &str) -> Result<String> {
    let row = db
        .pg
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)",
            &[&relation],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn the_loader_role_keeps_a_table_the_owner_built() -> Result {
    let db = TestDb::new().await?;
    let loader = format!(
        "bronze_loader20_{}",
        db.name.trim_start_matches("bronze_test_")
    );
    configure(&db, "orders", keyed(Storage::Structured)).await?;
    db.pg
        .batch_execute(&format!("CREATE ROLE {loader} LOGIN"))
        .await?;
    bronze::roles::grant_loader(&mut connect(&db.url).await?, &loader).await?;
    let as_loader = as_role(&db.url, &loader);
    let plain = Options::default();
    load_with(
        &as_loader,
        "orders",
        "1.csv",
        1,
        "id,name,qty\n1,a,10\n2,b,20\n",
        plain,
    )
    .await?;
    // The owner builds the table again (an operator's rebuild): it is handed to the
    // loader, whose next load changes a row and adds a column.
    typed::rebuild(&mut connect(&db.url).await?, &dest("orders")).await?;
    let owner = "SELECT (pg_get_userbyid(relowner) = current_user)::int::bigint FROM pg_class
                 WHERE oid = 'tenant_acme.orders_typed'::regclass";
    assert_eq!(db.count(owner).await?, 0, "the loader owns the typed table");
    let text = "id,name,qty,note\n1,a,10,\n2,b,21,x\n";
    load_with(&as_loader, "orders", "2.csv", 2, text, plain).await?;
    assert_eq!(rows(&db, "orders").await?, ["1 a 10", "2 b 21"]);
    assert_eq!(differences(&db, "orders").await?, 0);
    let admin = db.admin_url().to_owned();
    db.finish().await?;
    connect(&admin)
        .await?
        .batch_execute(&format!("DROP ROLE {loader}"))
        .await?;
    Ok(())
}
