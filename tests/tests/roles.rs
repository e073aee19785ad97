//! The functions' own role: the owner migrates, the functions connect as a loader
//! that may load and nothing more, and a tenant's first load makes its reader role
//! when the owner asked for that. Roles are global to a server: the test names its
//! roles after its own database and drops them.

use bronze::db::{Db, DbSource, Migrations};
use bronze::dispatch::Dispatcher;
use bronze::keys::Destination;
use bronze::load::Loader;
use bronze::{roles, tenants};
use bronze_tests::{as_role, connect, Bench, Result};
use tokio_postgres::error::SqlState;

#[tokio::test]
async fn a_loader_loads_and_may_do_nothing_else() -> Result {
    let bench = Bench::new(30).await?;
    let suffix = bench.name.trim_start_matches("bronze_test_").to_owned();
    let loader_role = format!("bronze_loader_{suffix}");
    let login = format!("bronze_login_{suffix}");
    let tenant = format!("rl{suffix}");
    let dest = Destination::new(&tenant, "orders")?;
    let reader_role = tenants::reader_role(&dest.tenant);

    // Until now one role did everything: it migrated, set the dataset up, asked for
    // reader roles on first loads, and loaded the tenant's first file.
    let mut owner = connect(&bench.url).await?;
    bronze::migrate::migrate(&mut owner).await?;
    tenants::set_auto_readers(&owner, true).await?;
    let settings = bronze::store::DatasetSettings {
        key_columns: vec!["id".into()],
        on_error: bronze::policy::OnError::Continue,
        ..Default::default()
    };
    bronze::store::set_dataset(&mut owner, &dest, &settings).await?;
    bench
        .put(
            &format!("{tenant}/orders/1.csv"),
            "id,qty\n1,5\n2,7\n3\n".as_bytes(),
        )
        .await?;
    bench.drain(&bench.dispatcher(), &bench.loader()).await?;

    // The deploy step that splits the roles: the loader is made and given the
    // tenant's existing table and view.
    owner
        .batch_execute(&format!("CREATE ROLE {loader_role} LOGIN"))
        .await?;
    roles::grant_loader(&mut owner, &loader_role).await?;
    let as_loader = as_role(&bench.url, &loader_role);
    let db = || Db::new(DbSource::Url(as_loader.clone())).migrations(Migrations::Require);
    let dispatcher = Dispatcher {
        db: db(),
        ..bench.dispatcher()
    };
    let loader = Loader {
        db: db(),
        ..bench.loader()
    };
    // The loader's file changes a key and adds a column: the typed view is made again,
    // by the loader, and stays readable by the tenant's reader.
    bench
        .put(
            &format!("{tenant}/orders/2.csv"),
            "id,qty,note\n1,5,\n2,8,late\n".as_bytes(),
        )
        .await?;
    bench.drain(&dispatcher, &loader).await?;

    let statuses: Vec<String> = bench
        .pg
        .query(
            "SELECT status || coalesce(': ' || error, '') FROM bronze.objects ORDER BY key",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(statuses, ["loaded", "loaded"], "both loaded as the loader");
    let table = format!("tenant_{tenant}.orders");
    assert_eq!(
        bench
            .count(&format!("SELECT count(*) FROM {table}"))
            .await?,
        4
    );
    assert_eq!(bench.count("SELECT count(*) FROM bronze.rejects").await?, 1);
    assert!(bench.count("SELECT count(*) FROM bronze.quality").await? > 0);

    // The first load made the tenant's reader role, and a login granted it reads the
    // typed view the loader made again, new column included.
    owner
        .batch_execute(&format!("CREATE ROLE {login} LOGIN"))
        .await?;
    tenants::grant(&owner, &dest.tenant, &login).await?;
    let reader = connect(&as_role(&bench.url, &login)).await?;
    let typed: i64 = reader
        .query_one(
            &format!("SELECT count(*) FROM {table}_typed WHERE note = 'late'"),
            &[],
        )
        .await?
        .get(0);
    assert_eq!(
        typed, 1,
        "the reader sees the current rows through the new view"
    );
    drop(reader);

    // What the loader need not do, it cannot.
    let client = connect(&as_loader).await?;
    for sql in [
        "SELECT raw FROM bronze.rejects",
        "SELECT count(*) FROM bronze.quality",
        "SELECT count(*) FROM bronze.tenants",
        "SELECT count(*) FROM bronze.settings",
        "UPDATE bronze.settings SET reader_roles_on_first_load = false",
        "UPDATE bronze.datasets SET on_error = 'continue'",
        "DELETE FROM bronze.objects",
        "DELETE FROM bronze.loads",
        "INSERT INTO bronze.migrations (version, name) VALUES (999, 'x')",
        "ALTER TABLE bronze.loads ADD COLUMN x integer",
        "DROP TABLE bronze.objects",
        "CREATE SCHEMA tenant_other",
        "CREATE ROLE bronze_not_allowed",
        "CREATE DATABASE bronze_not_allowed",
        "CREATE FUNCTION bronze.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ] {
        let refused = client.batch_execute(sql).await.err();
        assert_eq!(
            refused.as_ref().and_then(|e| e.code()),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {refused:?}"
        );
    }
    let escalated = client
        .query_one(
            "SELECT bronze.open_tenant('x; DROP TABLE bronze.objects', true)",
            &[],
        )
        .await
        .err();
    assert_eq!(
        escalated.as_ref().and_then(|e| e.code()),
        Some(&SqlState::INVALID_NAME),
        "the owner's function checks the name whoever calls: {escalated:?}"
    );
    drop(client);

    // The loader cannot migrate: a database behind this build is refused, not changed.
    owner
        .execute(
            "DELETE FROM bronze.migrations WHERE version = $1",
            &[&bronze::migrate::LATEST],
        )
        .await?;
    let refused = match db().client().await {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    let reason = refused.ok_or("a database behind the build was accepted")?;
    assert!(reason.contains("run `bronze migrate`"), "{reason}");
    drop(owner);

    let admin = connect(bench.admin_url()).await?;
    bench.finish().await?;
    for role in [login, reader_role, loader_role] {
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
            .await?;
    }
    Ok(())
}
