//! Tenants' reader roles: a platform team gives each tenant its own door. The reader
//! role of tenant `t`, `bronze_reader_<t>`, may read the tenant's schema (its tables
//! and typed views, also those made later) and its own rows of the shared tables,
//! through row-level security (migration 0009); it may not log in: a login role is
//! granted it (`bronze tenants grant`).

use tokio_postgres::GenericClient;

use crate::keys::{quote_ident, Name};

/// The reader role of `tenant`.
pub fn reader_role(tenant: &Name) -> String {
    format!("bronze_reader_{tenant}")
}

/// Makes (or completes) `tenant`'s reader role and its grants; idempotent. Runs as
/// the owner (`bronze.open_tenant`, migration 0012), which must have the right to
/// create roles; tables and typed views made later, by the owner or a loader, keep
/// the grant.
pub async fn create(
    db: &impl GenericClient,
    tenant: &Name,
) -> Result<String, tokio_postgres::Error> {
    db.execute("SELECT bronze.open_tenant($1, true)", &[&tenant.as_str()])
        .await?;
    Ok(reader_role(tenant))
}

/// Whether a tenant's first load makes its reader role, as [`create`] would.
pub async fn set_auto_readers(
    db: &impl GenericClient,
    on: bool,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE bronze.settings SET reader_roles_on_first_load = $1",
        &[&on],
    )
    .await?;
    Ok(())
}

/// Lets `login` (a role that logs in) read `tenant`'s data.
pub async fn grant(
    db: &impl GenericClient,
    tenant: &Name,
    login: &str,
) -> Result<(), tokio_postgres::Error> {
    let role = quote_ident(&reader_role(tenant));
    db.batch_execute(&format!("GRANT {role} TO {}", quote_ident(login)))
        .await
}
