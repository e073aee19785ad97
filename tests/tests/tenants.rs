//! Tenants do not stall each other: a tenant's first load, however long, leaves another
//! tenant's first load free to go.

use std::time::SystemTime;

use bronze::keys::Destination;
use bronze::pipeline;
use bronze::store::Lineage;
use bronze_tests::{connect, InMemory, Result, TestDb};

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
