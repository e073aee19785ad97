//! Who may write where: anyone with `PutObject` on the bucket could otherwise write
//! into any tenant's prefix and make unlimited tenants and datasets. Dispatch asks
//! these rules before it records an object; a refusal records it `skipped`, with the
//! rule that refused it, and loads nothing.
//!
//! The bucket policy is the first door (docs/security.md has the per-prefix pattern);
//! these rules are the second, for what the policy cannot say: a tenant allow-list,
//! the writers of each tenant as S3's events name them, and quotas.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::GenericClient;

use crate::keys::Destination;

/// The rules, all optional: by default anyone may write anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Only these tenants; `None` for any.
    pub tenants: Option<BTreeSet<String>>,
    /// Per tenant, the principals that may write its objects (S3's
    /// `userIdentity.principalId`, e.g. `AWS:AIDA…`, or the id alone). A tenant not
    /// named here may be written by anyone; an event that names no principal (moto,
    /// a backfill) is let through.
    pub writers: BTreeMap<String, BTreeSet<String>>,
    /// Datasets a tenant may have.
    pub max_datasets: Option<i64>,
    /// Objects a tenant may send in 24 hours.
    pub max_objects_per_day: Option<i64>,
}

/// A rule's setting that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct BadRule {
    name: &'static str,
    reason: String,
}

impl Admission {
    /// `BRONZE_TENANTS` (comma-separated), `BRONZE_TENANT_WRITERS` (JSON: tenant →
    /// list of principals), `BRONZE_MAX_DATASETS_PER_TENANT`,
    /// `BRONZE_MAX_OBJECTS_PER_TENANT_PER_DAY`.
    pub fn from_env() -> Result<Self, BadRule> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, BadRule> {
        let tenants = var("BRONZE_TENANTS")
            .map(|list| list.split(',').map(|t| t.trim().to_owned()).collect());
        let writers = match var("BRONZE_TENANT_WRITERS") {
            Some(text) => serde_json::from_str(&text).map_err(|e| BadRule {
                name: "BRONZE_TENANT_WRITERS",
                reason: format!("expected {{\"tenant\": [\"principal\", …]}}: {e}"),
            })?,
            None => BTreeMap::new(),
        };
        let number = |name: &'static str| -> Result<Option<i64>, BadRule> {
            var(name)
                .map(|text| {
                    text.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(BadRule {
                            name,
                            reason: format!("{text:?} is not a positive whole number"),
                        })
                })
                .transpose()
        };
        Ok(Self {
            tenants,
            writers,
            max_datasets: number("BRONZE_MAX_DATASETS_PER_TENANT")?,
            max_objects_per_day: number("BRONZE_MAX_OBJECTS_PER_TENANT_PER_DAY")?,
        })
    }

    /// Why an object for `dest`, written by `principal`, is refused; `None` when it
    /// may be loaded.
    pub async fn refuse(
        &self,
        db: &impl GenericClient,
        dest: &Destination,
        principal: Option<&str>,
    ) -> Result<Option<String>, tokio_postgres::Error> {
        let tenant = dest.tenant.as_str();
        if self.tenants.as_ref().is_some_and(|t| !t.contains(tenant)) {
            return Ok(Some(format!(
                "tenant {tenant:?} is not on the allow-list (BRONZE_TENANTS)"
            )));
        }
        if let (Some(allowed), Some(principal)) = (self.writers.get(tenant), principal) {
            if !allowed.iter().any(|a| same_principal(a, principal)) {
                return Ok(Some(format!(
                    "principal {principal:?} may not write tenant {tenant:?} (BRONZE_TENANT_WRITERS)"
                )));
            }
        }
        if let Some(max) = self.max_datasets {
            let row = db
                .query_one(
                    "SELECT count(DISTINCT dataset), bool_or(dataset = $2)
                     FROM bronze.objects WHERE tenant = $1 AND status <> 'skipped'",
                    &[&tenant, &dest.dataset.as_str()],
                )
                .await?;
            let (datasets, known): (i64, Option<bool>) = (row.get(0), row.get(1));
            if !known.unwrap_or(false) && datasets >= max {
                return Ok(Some(format!(
                    "tenant {tenant:?} has {datasets} datasets, its quota \
                     (BRONZE_MAX_DATASETS_PER_TENANT={max})"
                )));
            }
        }
        if let Some(max) = self.max_objects_per_day {
            let sent: i64 = db
                .query_one(
                    "SELECT count(*) FROM bronze.objects WHERE tenant = $1
                       AND status <> 'skipped' AND received_at > now() - interval '1 day'",
                    &[&tenant],
                )
                .await?
                .get(0);
            if sent >= max {
                return Ok(Some(format!(
                    "tenant {tenant:?} sent {sent} objects in 24 hours, its quota \
                     (BRONZE_MAX_OBJECTS_PER_TENANT_PER_DAY={max})"
                )));
            }
        }
        Ok(None)
    }
}

/// Whether a configured principal names the event's: the same text, or the same id
/// with or without S3's `AWS:` prefix and a role session's `:session` suffix.
fn same_principal(allowed: &str, principal: &str) -> bool {
    let id = |p: &str| -> String {
        let p = p.strip_prefix("AWS:").unwrap_or(p);
        p.split(':').next().unwrap_or(p).to_owned()
    };
    allowed == principal || id(allowed) == id(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_from_the_environment_and_nonsense_is_refused() {
        let rules = Admission::from_vars(|name| match name {
            "BRONZE_TENANTS" => Some("acme, globex".into()),
            "BRONZE_TENANT_WRITERS" => Some(r#"{"acme": ["AWS:AIDAACME"]}"#.into()),
            "BRONZE_MAX_DATASETS_PER_TENANT" => Some("2".into()),
            _ => None,
        })
        .unwrap();
        assert!(rules.tenants.as_ref().unwrap().contains("globex"));
        assert!(rules.writers["acme"].contains("AWS:AIDAACME"));
        assert_eq!(
            (rules.max_datasets, rules.max_objects_per_day),
            (Some(2), None)
        );
        let bad = Admission::from_vars(|name| {
            (name == "BRONZE_TENANT_WRITERS").then(|| "[1]".to_owned())
        });
        assert!(bad.is_err());
    }

    #[test]
    fn principals_match_with_or_without_their_decorations() {
        assert!(same_principal("AWS:AIDAACME", "AWS:AIDAACME"));
        assert!(same_principal("AIDAACME", "AWS:AIDAACME"));
        assert!(same_principal("AROAROLE", "AWS:AROAROLE:session-1"));
        assert!(!same_principal("AIDAACME", "AWS:AIDAOTHER"));
    }
}
