//! The schema registry, contracts, JSON Schema validation, quality figures and typed
//! views, against PostgreSQL through the real pipeline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bronze::contract::Contract;
use bronze::keys::Destination;
use bronze::pipeline::{LoadError, Loaded};
use bronze::policy::OnError;
use bronze::registry;
use bronze::schema::{diff, ChangeKind};
use bronze::store::{self, DatasetSettings};
use bronze_tests::{connect, load_bytes, Result, TestDb};
use serde_json::{json, Value};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

async fn load(db: &TestDb, dataset: &str, name: &str, ts: u64, text: &str) -> Result<Loaded> {
    Ok(load_bytes(db, dataset, name, at(ts), text.as_bytes()).await??)
}

async fn refused(db: &TestDb, dataset: &str, name: &str, ts: u64, text: &str) -> Result<String> {
    match load_bytes(db, dataset, name, at(ts), text.as_bytes()).await? {
        Err(LoadError::Rejected { reason, .. }) => Ok(reason),
        other => Err(format!("expected a rejected file, got {other:?}").into()),
    }
}

async fn configure(db: &TestDb, dataset: &str, settings: DatasetSettings) -> Result {
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let dest = Destination::new("acme", dataset)?;
    store::set_dataset(&mut client, &dest, &settings).await?;
    Ok(())
}

/// (version, [(change, column, breaking)]) of every stored version, oldest first.
async fn versions(db: &TestDb, dataset: &str) -> Result<Vec<(i32, Vec<(String, String, bool)>)>> {
    let rows = db
        .pg
        .query(
            "SELECT version, changes::text FROM bronze.schemas
             WHERE tenant = 'acme' AND dataset = $1 ORDER BY version",
            &[&dataset],
        )
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let changes: Value = serde_json::from_str(row.get(1))?;
        let listed = changes
            .as_array()
            .ok_or("changes is an array")?
            .iter()
            .map(|c| {
                (
                    c["change"].as_str().unwrap_or_default().to_owned(),
                    c["column"].as_str().unwrap_or_default().to_owned(),
                    c["breaking"].as_bool().unwrap_or_default(),
                )
            })
            .collect();
        out.push((row.get(0), listed));
    }
    Ok(out)
}

fn change(kind: &str, column: &str, breaking: bool) -> (String, String, bool) {
    (kind.into(), column.into(), breaking)
}

#[tokio::test]
async fn every_load_is_compared_with_the_current_version() -> Result {
    let db = TestDb::new().await?;
    let first = load(
        &db,
        "people",
        "1.csv",
        1,
        "id,mail,amount,joined\n1,a@x.io,10,2024-01-02\n2,b@y.io,20,2024-01-03\n",
    )
    .await?;
    assert_eq!((first.schema_version, first.new_version), (Some(1), true));

    // Whole numbers in a column that is already a number, no nulls: the file fits.
    let same = load(
        &db,
        "people",
        "2.csv",
        2,
        "id,mail,amount,joined\n3,c@x.io,30,2024-01-04\n",
    )
    .await?;
    assert_eq!((same.schema_version, same.new_version), (Some(1), false));

    // Non-breaking: a type widened, nullability widened, a column added.
    let wider = load(
        &db,
        "people",
        "3.csv",
        3,
        "id,mail,amount,joined,tier\n4,d@x.io,1.5,2024-01-05,gold\n5,,2,2024-01-06,silver\n",
    )
    .await?;
    assert_eq!((wider.schema_version, wider.new_version), (Some(2), true));

    // Breaking: `mail` renamed (values seen under the old name, now under a new one),
    // `joined` removed, `amount` now holds dates.
    load(
        &db,
        "people",
        "4.csv",
        4,
        "id,email,amount,tier\n1,d@x.io,2024-01-01,gold\n2,b@y.io,2024-01-02,silver\n",
    )
    .await?;
    // The emails stop being emails: a semantic type lost.
    load(
        &db,
        "people",
        "5.csv",
        5,
        "id,email,amount,tier\n6,none,2024-01-03,gold\n7,nope,2024-01-04,gold\n",
    )
    .await?;

    let stored = versions(&db, "people").await?;
    assert_eq!(
        stored,
        vec![
            (1, vec![]),
            (
                2,
                vec![
                    change("nullable_widened", "mail", false),
                    change("type_widened", "amount", false),
                    change("added", "tier", false),
                ]
            ),
            (
                3,
                vec![
                    change("type_changed", "amount", true),
                    change("renamed", "email", true),
                    change("removed", "joined", true),
                ]
            ),
            (4, vec![change("semantic_lost", "email", true)]),
        ]
    );
    let introduced: Vec<(i32, i64)> = db
        .pg
        .query(
            "SELECT s.version, count(t.*) FROM bronze.schemas s
             JOIN bronze.loads l ON l.id = s.load_id
             LEFT JOIN tenant_acme.people t ON t.load_id = l.id AND t.schema_version = s.version
             GROUP BY s.version ORDER BY s.version",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Each version knows its load, and that load's rows carry the version.
    assert_eq!(introduced, vec![(1, 2), (2, 2), (3, 2), (4, 2)]);
    let loads: Vec<Option<i32>> = db
        .pg
        .query("SELECT schema_version FROM bronze.loads ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(loads, vec![Some(1), Some(1), Some(2), Some(3), Some(4)]);

    // A file never narrows a version (whole numbers fit a number column), but stored
    // versions compared backwards show what going back would break.
    let stored = registry::history(&db.pg, &Destination::new("acme", "people")?).await?;
    let back: Vec<(ChangeKind, String, bool)> = diff(&stored[1].schema, &stored[0].schema)
        .into_iter()
        .map(|c| (c.change, c.column, c.breaking))
        .collect();
    assert_eq!(
        back,
        vec![
            (ChangeKind::NullableNarrowed, "mail".into(), true),
            (ChangeKind::TypeNarrowed, "amount".into(), true),
            (ChangeKind::Removed, "tier".into(), true),
        ]
    );
    db.finish().await
}

#[tokio::test]
async fn freeze_rejects_breaking_files_whole_and_accepts_the_rest() -> Result {
    let db = TestDb::new().await?;
    let frozen = DatasetSettings {
        key_columns: vec!["id".into()],
        contract: Contract::Freeze,
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "orders", frozen).await?;
    load(&db, "orders", "1.csv", 1, "id,sku,qty\n1,a,2\n2,b,3\n").await?;
    let added = load(&db, "orders", "2.csv", 2, "id,sku,qty,note\n3,c,1,hi\n").await?;
    assert_eq!(added.schema_version, Some(2));

    let reason = refused(&db, "orders", "3.csv", 3, "id,qty,note\n4,5,x\n5,6,y\n").await?;
    assert_eq!(
        reason,
        "breaking schema change under the freeze contract (version 2): column `sku` removed"
    );
    let reason = refused(
        &db,
        "orders",
        "4.csv",
        4,
        "id,sku,qty,note\n6,d,2024-01-01,z\n",
    )
    .await?;
    assert_eq!(
        reason,
        "breaking schema change under the freeze contract (version 2): \
         `qty`: type changed integer → date"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM tenant_acme.orders").await?,
        3
    );
    assert_eq!(db.count("SELECT count(*) FROM bronze.schemas").await?, 2);
    db.finish().await
}

#[tokio::test]
async fn discard_row_keeps_the_records_that_fit() -> Result {
    let db = TestDb::new().await?;
    let discard = DatasetSettings {
        contract: Contract::DiscardRow,
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "events", discard).await?;
    load(
        &db,
        "events",
        "1.ndjson",
        1,
        "{\"id\":1,\"kind\":\"open\",\"at\":\"2024-01-02T10:00:00Z\"}\n",
    )
    .await?;
    let second = load(
        &db,
        "events",
        "2.ndjson",
        2,
        concat!(
            "{\"id\":2,\"kind\":\"open\",\"at\":\"2024-01-02T11:00:00Z\"}\n",
            "{\"id\":\"three\",\"kind\":\"open\",\"at\":\"2024-01-02T12:00:00Z\"}\n",
            "{\"id\":4,\"kind\":\"open\",\"at\":\"2024-01-02T13:00:00Z\",\"extra\":1}\n",
            "{\"id\":5,\"kind\":null,\"at\":\"2024-01-02T14:00:00Z\"}\n",
            "{\"id\":6,\"at\":\"yesterday\",\"kind\":\"close\"}\n",
            "{\"id\":7,\"kind\":\"close\"}\n",
            "{\"id\":8,\"kind\":\"close\",\"at\":\"2024-01-03T09:00:00Z\"}\n",
        ),
    )
    .await?;
    assert_eq!(
        (second.counts.inserted, second.counts.rejected),
        (2, 5),
        "{second:?}"
    );
    assert_eq!(
        (second.schema_version, second.new_version),
        (Some(1), false)
    );
    let rejects: Vec<(i64, String)> = db
        .pg
        .query(
            "SELECT line, reason FROM bronze.rejects WHERE load_id = $1 ORDER BY line",
            &[&second.load_id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rejects,
        vec![
            (
                2,
                "`id`: \"three\" is not integer (schema version 1)".to_owned()
            ),
            (3, "field `extra` is not in schema version 1".to_owned()),
            (
                4,
                "`kind` is null; schema version 1 does not allow nulls".to_owned()
            ),
            (
                5,
                "`at`: \"yesterday\" is not timestamp (schema version 1)".to_owned()
            ),
            (
                6,
                "`at` is missing; schema version 1 requires it".to_owned()
            ),
        ]
    );
    db.finish().await
}

#[tokio::test]
async fn json_schema_failures_are_rejected_with_pointer_and_message() -> Result {
    let db = TestDb::new().await?;
    let checked = DatasetSettings {
        json_schema: Some(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["id", "email"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}
            }
        })),
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "users", checked).await?;
    let loaded = load(
        &db,
        "users",
        "u.ndjson",
        1,
        concat!(
            "{\"id\":1,\"email\":\"a@x.io\"}\n",
            "{\"id\":0,\"email\":\"b@x.io\"}\n",
            "{\"id\":3,\"email\":\"nope\"}\n",
            "{\"id\":4}\n",
            "{\"id\":5,\"email\":\"e@x.io\"}\n",
        ),
    )
    .await?;
    assert_eq!((loaded.counts.inserted, loaded.counts.rejected), (2, 3));
    let rejects: Vec<(i64, String)> = db
        .pg
        .query(
            "SELECT line, reason FROM bronze.rejects WHERE load_id = $1 ORDER BY line",
            &[&loaded.load_id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rejects.len(), 3);
    assert_eq!(rejects[0].0, 2);
    assert!(
        rejects[0]
            .1
            .starts_with("JSON Schema: at /id: 0 is less than the minimum of 1"),
        "{rejects:?}"
    );
    assert_eq!(rejects[1].0, 3);
    assert!(
        rejects[1]
            .1
            .starts_with("JSON Schema: at /email: \"nope\" does not match"),
        "{rejects:?}"
    );
    assert_eq!(
        rejects[2],
        (
            4,
            "JSON Schema: at /: \"email\" is a required property".to_owned()
        )
    );
    let validated: Vec<Option<bool>> = db
        .pg
        .query(
            "SELECT validated FROM tenant_acme.users ORDER BY source_line",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(validated, vec![Some(true), Some(true)]);
    db.finish().await
}

/// 100 records: 10 missing emails, 3 invalid ones, 2 repeated ids, 2 dates in another
/// layout (valid dates, but not consistent with the rest).
fn defective_file() -> String {
    let mut csv = String::from("id,email,signup\n");
    for i in 1..=100 {
        let id = if i == 50 || i == 60 { i - 1 } else { i };
        let email = match i {
            1..=10 => String::new(),
            11..=13 => format!("user{i}-at-example.com"),
            _ => format!("user{i}@example.com"),
        };
        let signup = if i > 98 {
            format!("2024/03/{:02}", i - 90)
        } else {
            format!("2024-02-{:02}", i % 28 + 1)
        };
        csv.push_str(&format!("{id},{email},{signup}\n"));
    }
    csv
}

#[tokio::test]
async fn quality_figures_of_a_file_with_known_defects() -> Result {
    let db = TestDb::new().await?;
    let keyed = DatasetSettings {
        key_columns: vec!["id".into()],
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "signups", keyed).await?;
    let loaded = load(&db, "signups", "s.csv", 1, &defective_file()).await?;
    let rows = db
        .pg
        .query(
            "SELECT column_name, type, semantic, is_key, records, non_null, valid,
                    distinct_estimate, duplicates, consistent, completeness, validity,
                    uniqueness, consistency, score
             FROM bronze.quality WHERE load_id = $1 ORDER BY position",
            &[&loaded.load_id],
        )
        .await?;
    type Figures = (
        String,
        String,
        Option<String>,
        bool,
        [i64; 2],
        [Option<i64>; 4],
        [Option<f64>; 5],
    );
    let figures: Vec<Figures> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                [r.get(4), r.get(5)],
                [r.get(6), Some(r.get(7)), r.get(8), r.get(9)],
                [
                    Some(r.get(10)),
                    r.get(11),
                    r.get(12),
                    r.get(13),
                    Some(r.get(14)),
                ],
            )
        })
        .collect();
    assert_eq!(
        figures,
        vec![
            (
                "id".into(),
                "integer".into(),
                None,
                true,
                [100, 100],
                [Some(100), Some(98), Some(2), None],
                [Some(1.0), Some(1.0), Some(0.98), None, Some(0.993333)],
            ),
            (
                "email".into(),
                "string".into(),
                Some("email".into()),
                false,
                [100, 90],
                [Some(87), Some(90), None, None],
                [Some(0.9), Some(0.966667), Some(1.0), None, Some(0.933333)],
            ),
            (
                "signup".into(),
                "date".into(),
                None,
                false,
                [100, 100],
                [Some(100), Some(30), None, Some(98)],
                [Some(1.0), Some(1.0), Some(0.3), Some(0.98), Some(0.993333)],
            ),
        ]
    );
    let (score, duplicates): (Option<f64>, Option<i64>) = {
        let r = db
            .pg
            .query_one(
                "SELECT quality_score, key_duplicates FROM bronze.loads WHERE id = $1",
                &[&loaded.load_id],
            )
            .await?;
        (r.get(0), r.get(1))
    };
    assert_eq!((score, duplicates), (Some(0.973333), Some(2)));
    assert_eq!(loaded.quality_score, score);
    db.finish().await
}

/// "name type" of the typed view's data columns, in order.
async fn view_columns(db: &TestDb) -> Result<Vec<String>> {
    let rows = db
        .pg
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'tenant_acme' AND table_name = 'sales_typed'
               AND column_name NOT LIKE '\\_bronze\\_%' ORDER BY ordinal_position",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| format!("{} {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

#[tokio::test]
async fn the_typed_view_follows_the_current_version() -> Result {
    let db = TestDb::new().await?;
    let keyed = DatasetSettings {
        key_columns: vec!["id".into()],
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "sales", keyed).await?;
    load(
        &db,
        "sales",
        "1.csv",
        1,
        "id,amount,day,paid,at\n1,10,31/01/2024,yes,2024-01-31T10:00:00+02:00\n2,20,01/02/2024,no,2024-02-01T00:30:00Z\n",
    )
    .await?;
    assert_eq!(
        view_columns(&db).await?,
        [
            "id bigint",
            "amount bigint",
            "day date",
            "paid boolean",
            "at timestamp with time zone"
        ]
    );
    let row = db
        .pg
        .query_one(
            "SELECT amount::text, day::text, paid, (at AT TIME ZONE 'UTC')::text,
                    _bronze_version, _bronze_schema_version
             FROM tenant_acme.sales_typed WHERE id = 1",
            &[],
        )
        .await?;
    let first: (String, String, bool, String, i32, i32) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(
        first,
        (
            "10".into(),
            "2024-01-31".into(),
            true,
            "2024-01-31 08:00:00".into(),
            1,
            1
        )
    );

    // A new version: amounts become decimals, a column is added; the view follows.
    load(
        &db,
        "sales",
        "2.csv",
        2,
        "id,amount,day,paid,at,note\n2,20.5,01/02/2024,no,2024-02-01T00:30:00Z,late\n3,7,02/02/2024,yes,2024-02-02T09:00:00Z,\n",
    )
    .await?;
    assert_eq!(
        view_columns(&db).await?,
        [
            "id bigint",
            "amount numeric",
            "day date",
            "paid boolean",
            "at timestamp with time zone",
            "note text"
        ]
    );
    let rows: Vec<(i64, String, Option<String>, i32)> = db
        .pg
        .query(
            "SELECT id, amount::text, note, _bronze_schema_version
             FROM tenant_acme.sales_typed ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, "10".into(), None, 1),
            (2, "20.5".into(), Some("late".into()), 2),
            // Text is shown as written: an empty CSV field is an empty string.
            (3, "7".into(), Some(String::new()), 2),
        ]
    );
    db.finish().await
}

#[tokio::test]
async fn semantic_types_layouts_and_widened_dates() -> Result {
    let db = TestDb::new().await?;
    let keyed = DatasetSettings {
        key_columns: vec!["id".into()],
        on_error: OnError::Continue,
        ..DatasetSettings::default()
    };
    configure(&db, "contacts", keyed).await?;
    load(
        &db,
        "contacts",
        "1.csv",
        1,
        "id,contact,day\n1,abc,2024-01-02\n2,def,2024-01-03\n",
    )
    .await?;
    load(
        &db,
        "contacts",
        "2.csv",
        2,
        "id,contact,day\n3,c@x.io,2024/01/04\n4,d@x.io,2024/01/05\n",
    )
    .await?;
    load(
        &db,
        "contacts",
        "3.csv",
        3,
        "id,contact,day\n5,e@x.io,2024/01/06 10:30\n",
    )
    .await?;
    assert_eq!(
        versions(&db, "contacts").await?,
        vec![
            (1, vec![]),
            (
                2,
                vec![
                    change("semantic_added", "contact", false),
                    change("format_changed", "day", false),
                ]
            ),
            (3, vec![change("type_widened", "day", false)]),
        ]
    );
    // Dates loaded before the column became a timestamp read as their midnight.
    let days: Vec<(i64, String)> = db
        .pg
        .query(
            "SELECT id, day::text FROM tenant_acme.contacts_typed ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        days,
        vec![
            (1, "2024-01-02 00:00:00".into()),
            (2, "2024-01-03 00:00:00".into()),
            (3, "2024-01-04 00:00:00".into()),
            (4, "2024-01-05 00:00:00".into()),
            (5, "2024-01-06 10:30:00".into()),
        ]
    );
    db.finish().await
}

/// The typed views' casts return NULL for what does not fit, and never raise.
#[tokio::test]
async fn casts_cannot_fail() -> Result {
    let db = TestDb::new().await?;
    bronze::migrate::migrate(&mut connect(&db.url).await?).await?;
    let row = db
        .pg
        .query_one(
            "SELECT bronze.try_bigint('9223372036854775807')::text,
                    bronze.try_bigint('9223372036854775808')::text,
                    bronze.try_bigint(E'12\\u3000')::text,
                    bronze.try_numeric(repeat('9', 20000))::text,
                    bronze.try_numeric(repeat('1', 1990) || 'e-9999') IS NOT NULL,
                    bronze.try_numeric(' -Inf')::text,
                    bronze.try_date('0000-01-01', 'ymd')::text,
                    bronze.try_date('31/02/2024', 'dmy')::text,
                    bronze.try_date('02/29/2024', 'mdy')::text,
                    bronze.try_time('24:00')::text,
                    bronze.try_time('23:59:60')::text,
                    bronze.try_timestamp('2024-13-01T10:00', 'ymd')::text,
                    (bronze.try_timestamptz('02-01-2024 10:00-05:00', 'dmy')
                        AT TIME ZONE 'UTC')::text,
                    (bronze.try_timestamptz('2024-01-02', 'ymd') AT TIME ZONE 'UTC')::text,
                    bronze.try_boolean('Yes'), bronze.try_boolean('y')",
            &[],
        )
        .await?;
    let texts: Vec<Option<String>> = (0..16)
        .filter(|i| ![4, 14, 15].contains(i))
        .map(|i| row.get(i))
        .collect();
    assert_eq!(
        texts,
        [
            Some("9223372036854775807"),
            None,
            None,
            None,
            Some("-Infinity"),
            None,
            None,
            Some("2024-02-29"),
            None,
            Some("24:00:00"),
            None,
            Some("2024-01-02 15:00:00"),
            Some("2024-01-02 00:00:00"),
        ]
        .map(|t| t.map(str::to_owned))
    );
    let flags: (bool, Option<bool>, Option<bool>) = (row.get(4), row.get(14), row.get(15));
    assert_eq!(flags, (true, Some(true), None));
    // Negative numbers take the cast without the regex (migration 0013), and only
    // when the sign leads plain digits.
    let negatives = db
        .pg
        .query_one(
            "SELECT concat_ws(' ', bronze.try_bigint('-12'), bronze.try_bigint('-'),
                              bronze.try_bigint('-1-2'), bronze.try_bigint('--3'),
                              bronze.try_bigint('-999999999999999999'),
                              bronze.try_bigint('-9223372036854775808'),
                              bronze.try_bigint('-9223372036854775809'),
                              bronze.try_numeric('-1.50'), bronze.try_numeric('-.5'),
                              bronze.try_numeric('-5.'), bronze.try_numeric('-.'),
                              bronze.try_numeric('-1.2.3'), bronze.try_numeric('-'))",
            &[],
        )
        .await?;
    assert_eq!(
        negatives.get::<_, String>(0),
        "-12 -999999999999999999 -9223372036854775808 -1.50 -0.5 -5"
    );
    db.finish().await
}

/// The ISO fast path of the date and timestamp casts (migration 0013) gives what the
/// general casts give, over every combination of valid and invalid fields, fractions,
/// separators and zones, in both date orders; and it is the path most of them take.
#[tokio::test]
async fn fast_temporal_casts_equal_the_general_ones() -> Result {
    let db = TestDb::new().await?;
    bronze::migrate::migrate(&mut connect(&db.url).await?).await?;
    let corpus = "WITH dates(d) AS (VALUES ('2024-01-02'), ('2023-02-29'), ('2024-02-29'),
                      ('2100-02-29'), ('2000-02-29'), ('2024-04-31'), ('2024-12-31'),
                      ('2024-13-01'), ('2024-00-10'), ('2024-01-00'), ('0000-01-01'),
                      ('0001-01-01'), ('9999-12-31'), ('2024-1-02'), ('24-01-02')),
                  times(t) AS (VALUES ('00:00:00'), ('23:59:59'), ('24:00:00'),
                      ('23:60:00'), ('23:59:60'), ('23:59:61'), ('10:30'), ('99:99:99')),
                  fractions(f) AS (VALUES (''), ('.'), ('.5'), ('.123456'), ('.1234565'),
                      ('.999999999'), ('.1234567890'), (',5')),
                  separators(s) AS (VALUES ('T'), (' '), ('t'), ('  ')),
                  zones(z) AS (VALUES (''), ('Z'), ('UTC'), ('+02:00'), ('-05:30'),
                      ('+14:00'), ('+15:00'), ('+02'), ('+0230'), ('+02:60'), (' Z'),
                      ('z'), ('+2'), ('Z '))
             SELECT d || s || t || f || z AS v FROM dates, times, fractions, separators, zones
             UNION ALL SELECT d FROM dates
             UNION ALL SELECT ' ' || d FROM dates";
    let row = db
        .pg
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE bronze.try_timestamp(v, o)
                                         IS DISTINCT FROM bronze.parse_timestamp(v, o)),
                        count(*) FILTER (WHERE bronze.try_timestamptz(v, o)
                                         IS DISTINCT FROM bronze.parse_timestamptz(v, o)),
                        count(*) FILTER (WHERE bronze.try_date(v, o)
                                         IS DISTINCT FROM bronze.parse_date(v, o)),
                        count(*) FILTER (WHERE o = 'ymd' AND bronze.iso_zone_start(v) IS NOT NULL
                                         AND bronze.try_timestamptz(v, o) IS NOT NULL),
                        count(*)
                 FROM ({corpus}) c, (VALUES ('ymd'), ('dmy')) orders(o)"
            ),
            &[],
        )
        .await?;
    let counts: Vec<i64> = (0..5).map(|i| row.get(i)).collect();
    assert_eq!(&counts[..3], [0, 0, 0], "fast and general casts differ");
    assert!(
        counts[3] > 1_000,
        "too few values take the fast path to prove it: {counts:?}"
    );
    db.finish().await
}

/// Views users build on the typed view survive appended columns, and a version that
/// would break them leaves the typed view as it was instead of failing the load.
#[tokio::test]
async fn views_built_on_the_typed_view_are_kept() -> Result {
    let db = TestDb::new().await?;
    load(&db, "items", "1.csv", 1, "id,price\n1,10\n").await?;
    db.pg
        .batch_execute(
            "CREATE VIEW public.cheap AS
             SELECT id FROM tenant_acme.items_typed WHERE price < 100",
        )
        .await?;
    load(&db, "items", "2.csv", 2, "id,price,colour\n2,20,red\n").await?;
    assert_eq!(db.count("SELECT count(*) FROM public.cheap").await?, 2);
    let dropped = load(&db, "items", "3.csv", 3, "id,colour\n3,blue\n").await?;
    assert_eq!(
        (dropped.schema_version, dropped.counts.inserted),
        (Some(3), 1)
    );
    assert_eq!(
        db.count("SELECT count(*) FROM tenant_acme.items_typed WHERE price IS NOT NULL")
            .await?,
        2
    );
    db.finish().await
}
