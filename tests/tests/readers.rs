//! Each tenant its own door: a tenant's reader role sees its schema and its own rows of
//! the shared tables, and nothing of another tenant's. Roles are global to a server:
//! the test names its roles after its own database and drops them.

use std::time::SystemTime;

use bronze::keys::Destination;
use bronze::tenants;
use bronze_tests::{as_role, connect, with_dbname, Result, TestDb};

#[tokio::test]
async fn a_tenants_reader_sees_its_own_data_and_nothing_of_anothers() -> Result {
    let db = TestDb::new().await?;
    // Tenants named after the test's database, so their roles are the test's own.
    let suffix = db.name.trim_start_matches("bronze_test_");
    let (a, b) = (format!("ra{suffix}"), format!("rb{suffix}"));
    let login = format!("bronze_login_{suffix}");
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    for tenant in [&a, &b] {
        let dest = Destination::new(tenant, "orders")?;
        let settings = bronze::store::DatasetSettings {
            on_error: bronze::policy::OnError::Continue,
            ..Default::default()
        };
        bronze::store::set_dataset(&mut client, &dest, &settings).await?;
        tenants::create(&client, &dest.tenant).await?;
    }
    // Loads as each tenant, with a reject each, through the tenants' own names.
    for tenant in [&a, &b] {
        let bytes = b"id,v\n1,x\n2\n";
        bronze_tests::load_for(&db, tenant, "orders", "o.csv", SystemTime::now(), bytes).await??;
    }
    client
        .batch_execute(&format!("CREATE ROLE {login} LOGIN"))
        .await?;
    let a_name = Destination::new(&a, "orders")?.tenant;
    tenants::grant(&client, &a_name, &login).await?;

    let url = as_role(&with_dbname(&db.url, &db.name), &login);
    let reader = connect(&url).await?;
    let own: i64 = reader
        .query_one(&format!("SELECT count(*) FROM tenant_{a}.orders"), &[])
        .await?
        .get(0);
    assert_eq!(own, 1);
    let typed: i64 = reader
        .query_one(
            &format!("SELECT count(*) FROM tenant_{a}.orders_typed"),
            &[],
        )
        .await?
        .get(0);
    assert_eq!(
        typed, 1,
        "the typed view, made after the grant, is readable"
    );
    let other = reader
        .query_one(&format!("SELECT count(*) FROM tenant_{b}.orders"), &[])
        .await;
    let denied = other.err().and_then(|e| e.code().cloned());
    assert_eq!(
        denied,
        Some(tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    for (table, expected) in [
        ("bronze.loads", 1i64),
        ("bronze.objects", 0),
        ("bronze.rejects", 1),
        ("bronze.schemas", 1),
    ] {
        let rows: i64 = reader
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
        assert_eq!(rows, expected, "{table}: tenant A's rows only");
    }
    let tenants_seen: Vec<String> = reader
        .query("SELECT DISTINCT tenant FROM bronze.loads", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tenants_seen, vec![a.clone()]);
    drop(reader);
    drop(client);
    let admin = db.admin_url().to_owned();
    db.finish().await?;
    let admin = connect(&admin).await?;
    for role in [
        login,
        tenants::reader_role(&Destination::new(&a, "x")?.tenant),
        tenants::reader_role(&Destination::new(&b, "x")?.tenant),
    ] {
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
            .await?;
    }
    Ok(())
}
