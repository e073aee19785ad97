//! TLS to PostgreSQL with libpq's `sslmode` meaning, against the local server (which
//! has TLS on with its own self-signed certificate).

use bronze::db::{Db, DbSource};
use bronze_tests::{Result, TestDb};

async fn uses_tls(db: &Db) -> Result<bool> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn sslmode_require_encrypts_and_the_default_does_not() -> Result {
    let test_db = TestDb::new().await?;
    let separator = if test_db.url.contains('?') { '&' } else { '?' };
    let required = Db::new(DbSource::Url(format!(
        "{}{separator}sslmode=require",
        test_db.url
    )));
    assert!(uses_tls(&required).await?, "sslmode=require must encrypt");
    let plain = Db::new(DbSource::Url(test_db.url.clone()));
    assert!(!uses_tls(&plain).await?);
    test_db.finish().await
}

#[test]
fn a_missing_root_certificate_is_named() {
    let err = bronze::tls::connector(Some(std::path::Path::new("/nonexistent/rds-ca.pem")))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("/nonexistent/rds-ca.pem"), "{err}");
}
