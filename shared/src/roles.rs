//! The loader role: what the functions connect as. It may do what loading needs and
//! nothing more; the owner (the role that migrates) keeps the rest. Why each grant is
//! there, and what is withheld, is in docs/security.md.

use tokio_postgres::{Client, GenericClient};

use crate::keys::quote_ident;

/// Shared tables the functions read and write: the ledger, loads, schema versions,
/// the reconcile cursor.
const READ_WRITE: &str = "bronze.objects, bronze.loads, bronze.schemas, bronze.reconcile";
/// Written by loads and never read back by them: the rejects (raw record text) and
/// the quality figures are for the tenant's readers and operators.
const WRITE_ONLY: &str = "bronze.rejects, bronze.quality";
/// Read by the functions, set by operators: dataset settings, and the migration the
/// database is at (checked at connect). Loads write one thing there: which schema
/// version a structured dataset's typed table follows, and why not the current one
/// (`typed_version`, `typed_note`, granted by column).
const READ_ONLY: &str = "bronze.datasets, bronze.migrations";

/// Why a role could not be made a loader.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// No such role: the loader is made by whoever manages roles, not by bronze.
    #[error("role {0:?} does not exist: create it first (CREATE ROLE … LOGIN)")]
    Missing(String),
    /// Superusers and the owner itself bypass every grant: naming one would prove
    /// nothing.
    #[error("role {0:?} is a superuser or owns bronze's tables: a loader must be neither")]
    Privileged(String),
    /// The database refused a grant.
    #[error("granting the loader role: {}", crate::aws::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// Makes `role` a loader (idempotent; run again after every `bronze migrate`, which
/// `bronze migrate --loader` does). Existing tenant schemas are opened to it, and
/// their tables and views are handed to it: schema evolution alters them.
pub async fn grant_loader(db: &mut Client, role: &str) -> Result<(), RoleError> {
    let row = db
        .query_opt(
            "SELECT r.rolsuper OR r.rolname = current_user
                    OR r.oid = (SELECT relowner FROM pg_class
                                WHERE oid = 'bronze.objects'::regclass)
             FROM pg_roles r WHERE r.rolname = $1",
            &[&role],
        )
        .await?
        .ok_or_else(|| RoleError::Missing(role.to_owned()))?;
    if row.get::<_, bool>(0) {
        return Err(RoleError::Privileged(role.to_owned()));
    }
    let tx = db.transaction().await?;
    let quoted = quote_ident(role);
    tx.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA bronze TO {quoted};
         GRANT SELECT, INSERT, UPDATE ON {READ_WRITE} TO {quoted};
         GRANT INSERT ON {WRITE_ONLY} TO {quoted};
         GRANT SELECT ON {READ_ONLY} TO {quoted};
         GRANT UPDATE (typed_version, typed_note) ON bronze.datasets TO {quoted};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA bronze TO {quoted};
         GRANT EXECUTE ON FUNCTION bronze.open_tenant(text, boolean) TO {quoted};
         GRANT EXECUTE ON FUNCTION bronze.may_read(text, name) TO {quoted};"
    ))
    .await?;
    become_member(&tx, role).await?;
    tx.execute(
        "INSERT INTO bronze.loaders (role) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&role],
    )
    .await?;
    hand_over_tenants(&tx, role).await?;
    tx.commit().await?;
    Ok(())
}

/// The owner must be a member of the loader to set default privileges for the
/// loader's tables (readers see them) and to hand tables over to it.
async fn become_member(db: &impl GenericClient, role: &str) -> Result<(), RoleError> {
    let member: bool = db
        .query_one("SELECT pg_has_role(current_user, $1, 'MEMBER')", &[&role])
        .await?
        .get(0);
    if !member {
        db.batch_execute(&format!("GRANT {} TO CURRENT_USER", quote_ident(role)))
            .await?;
    }
    Ok(())
}

/// Opens every tenant schema to the loader, and gives it the tables and views in
/// them that another role made (a set-up that used one role until now).
async fn hand_over_tenants(db: &impl GenericClient, role: &str) -> Result<(), RoleError> {
    let tenants = db
        .query(
            "SELECT substr(n.nspname, 8), EXISTS (SELECT 1 FROM bronze.tenants t
                                                  WHERE t.tenant = substr(n.nspname, 8))
             FROM pg_namespace n WHERE n.nspname LIKE 'tenant\\_%' ORDER BY 1",
            &[],
        )
        .await?;
    for tenant in &tenants {
        let (name, reader): (&str, bool) = (tenant.get(0), tenant.get(1));
        db.execute("SELECT bronze.open_tenant($1, $2)", &[&name, &reader])
            .await?;
    }
    let owned = db
        .query(
            "SELECT n.nspname, c.relname, c.relkind = 'v'
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'tenant\\_%' AND c.relkind IN ('r', 'p', 'v')
               AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $1)",
            &[&role],
        )
        .await?;
    for rel in &owned {
        let (schema, name, view): (&str, &str, bool) = (rel.get(0), rel.get(1), rel.get(2));
        let kind = if view { "VIEW" } else { "TABLE" };
        db.batch_execute(&format!(
            "ALTER {kind} {}.{} OWNER TO {}",
            quote_ident(schema),
            quote_ident(name),
            quote_ident(role)
        ))
        .await?;
    }
    Ok(())
}
