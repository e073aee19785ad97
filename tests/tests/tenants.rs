//! Tenants do not stall each other: a tenant's first load, however long, leaves another
//! tenant's first load free to go.

use std::time::SystemTime;

use bronze::admission::Admission;
use bronze::keys::Destination;
use bronze::pipeline;
use bronze::store::Lineage;
use bronze_tests::{connect, Bench, InMemory, Result, TestDb};

fn lineage(key: &str) -> Lineage {
    Lineage {
        bucket: None,
        key: key.into(),
        version_id: None,
        etag: None,
        source_ts: SystemTime::now(),
    }
}

#[tokio::test]
async fn a_tenants_first_load_does_not_wait_for_anothers() -> Result {
    let db = TestDb::new().await?;
    let mut a = connect(&db.url).await?;
    bronze::migrate::migrate(&mut a).await?;
    // Tenant A's first load, its transaction still open: its new schema, table and
    // rows are uncommitted, as during a long first load.
    let open = a.transaction().await?;
    let bytes = b"id\n1\n".to_vec();
    let source = Box::new(std::io::Cursor::new(bytes.clone()));
    let again = InMemory(bytes.clone());
    let dest_a = Destination::new("alpha", "orders")?;
    pipeline::load(
        &open,
        source,
        Some(&again),
        &dest_a,
        &lineage("a.csv"),
        None,
    )
    .await?;

    // Tenant B's first load, meanwhile, on its own connection: a lock A holds would
    // stop it with a lock timeout (advisory locks included) instead of a wait.
    let mut b = connect(&db.url).await?;
    let tx = b.transaction().await?;
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    let dest_b = Destination::new("beta", "orders")?;
    let source = Box::new(std::io::Cursor::new(bytes.clone()));
    let loaded =
        pipeline::load(&tx, source, Some(&again), &dest_b, &lineage("b.csv"), None).await?;
    tx.commit().await?;
    assert_eq!(loaded.counts.inserted, 1);
    open.rollback().await?;
    db.finish().await
}

/// A notification of `key` written by `principal`.
fn written_by(bench: &Bench, key: &str, etag: &str, principal: &str) -> serde_json::Value {
    let mut event = bench.notification(key, etag);
    event["Records"][0]["userIdentity"] = serde_json::json!({ "principalId": principal });
    event
}

#[tokio::test]
async fn only_allowed_tenants_and_writers_load_within_their_quotas() -> Result {
    let bench = Bench::new(30).await?;
    let mut dispatcher = bench.dispatcher();
    dispatcher.admission = Admission {
        tenants: Some(["acme".to_owned()].into()),
        writers: [("acme".to_owned(), ["AWS:AIDAACME".to_owned()].into())].into(),
        max_datasets: Some(1),
        max_objects_per_day: Some(2),
    };
    let cases = [
        ("acme/orders/1.csv", "AWS:AIDAACME", None),
        (
            "acme/orders/2.csv",
            "AWS:AIDAOTHER",
            Some("may not write tenant \"acme\""),
        ),
        (
            "globex/orders/1.csv",
            "AWS:AIDAACME",
            Some("not on the allow-list"),
        ),
        (
            "acme/invoices/1.csv",
            "AWS:AIDAACME",
            Some("its quota (BRONZE_MAX_DATASETS"),
        ),
        ("acme/orders/3.csv", "AIDAACME", None),
        (
            "acme/orders/4.csv",
            "AWS:AIDAACME",
            Some("its quota (BRONZE_MAX_OBJECTS"),
        ),
    ];
    for (key, principal, refused) in cases {
        let etag = bench.put(key, "id\n1\n").await?;
        dispatcher
            .handle(&written_by(&bench, key, &etag, principal))
            .await?;
        let row = bench
            .pg
            .query_one(
                "SELECT status, coalesce(error, '') FROM bronze.objects WHERE key = $1",
                &[&key],
            )
            .await?;
        let (status, error): (String, String) = (row.get(0), row.get(1));
        match refused {
            None => assert_eq!(status, "pending", "{key}: {error}"),
            Some(reason) => {
                assert_eq!(status, "skipped", "{key}");
                assert!(error.contains(reason), "{key}: {error}");
            }
        }
    }
    bench.finish().await
}
