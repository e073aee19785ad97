//! Tenants' reader roles: a platform team gives each tenant its own door. The reader
//! role of tenant `t`, `bronze_reader_<t>`, may read the tenant's schema (its tables
//! and typed views, also those made later) and its own rows of the shared tables,
//! through row-level security (migration 0009); it may not log in: a login role is
//! granted it (`bronze tenants grant`).

use tokio_postgres::GenericClient;

use crate::keys::{quote_ident, Name};

/// The shared tables a reader sees its tenant's rows of.
const SHARED: [&str; 5] = [
    "bronze.objects",
    "bronze.loads",
    "bronze.schemas",
    "bronze.rejects",
    "bronze.quality",
];

/// The reader role of `tenant`.
pub fn reader_role(tenant: &Name) -> String {
    format!("bronze_reader_{tenant}")
}

/// Makes (or completes) `tenant`'s reader role and its grants; idempotent. Needs the
/// right to create roles. Typed views made later keep the grant: it is a default
/// privilege of the role that runs this, which must be the role that loads.
pub async fn create(
    db: &impl GenericClient,
    tenant: &Name,
) -> Result<String, tokio_postgres::Error> {
    let role = reader_role(tenant);
    let exists: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&role],
        )
        .await?
        .get(0);
    let quoted = quote_ident(&role);
    if !exists {
        db.batch_execute(&format!("CREATE ROLE {quoted} NOLOGIN"))
            .await?;
    }
    // The tenant's schema, made now if its first load has not come yet.
    let schema = quote_ident(&format!("tenant_{tenant}"));
    db.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         GRANT USAGE ON SCHEMA {schema} TO {quoted};
         GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {quoted};
         ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {quoted};
         GRANT USAGE ON SCHEMA bronze TO {quoted};
         GRANT EXECUTE ON FUNCTION bronze.may_read(text, name) TO {quoted};
         GRANT SELECT ON {} TO {quoted};",
        SHARED.join(", ")
    ))
    .await?;
    db.execute(
        "INSERT INTO bronze.tenants (tenant, reader_role) VALUES ($1, $2)
         ON CONFLICT (tenant) DO NOTHING",
        &[&tenant.as_str(), &role],
    )
    .await?;
    Ok(role)
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
