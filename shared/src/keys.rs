//! Where an object belongs: tenant and dataset resolved from its key.

use std::fmt;

/// The tenant and dataset an object key names, both already checked against the name
/// rule, so they are safe to quote into SQL identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub tenant: Name,
    pub dataset: Name,
}

/// A tenant or dataset name that matches `^[a-z][a-z0-9_]{0,62}$`.
///
/// PostgreSQL silently truncates identifiers to 63 bytes, which would let two long
/// names share a table. So the names built from these, `tenant_<tenant>` and
/// `<dataset>_typed`, must fit too: tenants are at most 56 bytes, datasets 57.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

/// Why a key names no valid destination; recorded as the ledger's `skipped` reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key has no <tenant>/<dataset>/ prefix")]
    NoPrefix,
    #[error("{what} name {name:?} must match ^[a-z][a-z0-9_]{{0,62}}$ after lower-casing")]
    BadName { what: &'static str, name: String },
    #[error("dataset name {0:?} ends in `_typed`, which names the typed view of dataset {1:?}")]
    Reserved(String, String),
    #[error("{what} name {name:?} is longer than {max} bytes (PostgreSQL identifiers built from it would be truncated)")]
    TooLong {
        what: &'static str,
        name: String,
        max: usize,
    },
}

impl Name {
    /// Lower-cases `raw` and checks it against the name rule.
    fn parse(what: &'static str, raw: &str, max: usize) -> Result<Self, KeyError> {
        let name = raw.to_lowercase();
        let mut bytes = name.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !(first_ok && rest_ok && name.len() <= 63) {
            return Err(KeyError::BadName {
                what,
                name: raw.to_owned(),
            });
        }
        if name.len() > max {
            return Err(KeyError::TooLong {
                what,
                name: raw.to_owned(),
                max,
            });
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Destination {
    /// Resolves `<tenant>/<dataset>/.../<file>` or `tenant=<t>/dataset=<d>/.../<file>`.
    pub fn from_key(key: &str) -> Result<Self, KeyError> {
        let mut parts = key.split('/');
        let (Some(first), Some(second), Some(_file)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::NoPrefix);
        };
        let tenant = first.strip_prefix("tenant=").unwrap_or(first);
        let dataset = second.strip_prefix("dataset=").unwrap_or(second);
        Self::new(tenant, dataset)
    }

    /// Builds a destination from names given on the command line.
    pub fn new(tenant: &str, dataset: &str) -> Result<Self, KeyError> {
        let tenant = Name::parse("tenant", tenant, 56)?;
        let dataset = Name::parse("dataset", dataset, 57)?;
        if let Some(viewed) = dataset.0.strip_suffix("_typed") {
            return Err(KeyError::Reserved(dataset.0.clone(), viewed.to_owned()));
        }
        Ok(Self { tenant, dataset })
    }

    /// The PostgreSQL schema of the tenant.
    pub fn schema(&self) -> String {
        format!("tenant_{}", self.tenant)
    }
}

/// Quotes an SQL identifier. Names reach here already checked, this is the second belt.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_view_names_are_not_datasets() {
        assert_eq!(
            Destination::new("acme", "Orders_Typed"),
            Err(KeyError::Reserved("orders_typed".into(), "orders".into()))
        );
        assert!(Destination::new("acme", "typed").is_ok());
    }

    #[test]
    fn plain_and_hive_keys_resolve() {
        let d = Destination::from_key("Acme/Orders/2026/11/a.csv").unwrap();
        assert_eq!((d.tenant.as_str(), d.dataset.as_str()), ("acme", "orders"));
        let d = Destination::from_key("tenant=acme/dataset=customers/p=1/a.ndjson").unwrap();
        assert_eq!(
            (d.tenant.as_str(), d.dataset.as_str()),
            ("acme", "customers")
        );
        assert_eq!(d.schema(), "tenant_acme");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert_eq!(Destination::from_key("readme.csv"), Err(KeyError::NoPrefix));
        assert_eq!(
            Destination::from_key("acme/orders.csv"),
            Err(KeyError::NoPrefix)
        );
        let err = Destination::from_key("acme-corp/orders/x.csv").unwrap_err();
        assert!(
            err.to_string().contains("tenant name \"acme-corp\""),
            "{err}"
        );
        assert!(Destination::from_key("acme/1orders/x.csv").is_err());
        assert!(Destination::from_key("acme/orders\"; drop/x.csv").is_err());
        assert!(Destination::from_key(&format!("{}/d/x.csv", "a".repeat(64))).is_err());
        assert!(Destination::from_key(&format!("{}/d/x.csv", "a".repeat(56))).is_ok());
        let err = Destination::from_key(&format!("{}/d/x.csv", "a".repeat(57))).unwrap_err();
        assert!(matches!(err, KeyError::TooLong { max: 56, .. }), "{err}");
        assert!(Destination::from_key(&format!("t/{}/x.csv", "a".repeat(57))).is_ok());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
