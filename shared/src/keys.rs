//! Where an object belongs: tenant and dataset resolved from its key.

use std::fmt;

/// The tenant and dataset an object key names, both already checked against the name
/// rule, so they are safe to quote into SQL identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The tenant: its schema is `tenant_<tenant>`.
    pub tenant: Name,
    /// The dataset: its table in the tenant's schema.
    pub dataset: Name,
}

/// A tenant or dataset name: ASCII, matching `^[a-z][a-z0-9_]*$`, as written in the key.
///
/// The rule is checked on the name exactly as it arrives, before any case folding, and
/// nothing is folded afterwards either: one tenant has one spelling. Lower-casing first
/// would let `ACME/`, `Acme/` and Unicode look-alikes such as `\u{212A}cme` (the Kelvin
/// sign, which Unicode lower-cases to `k`) all land in one schema, so a bucket policy
/// written for the prefix `acme/` would not cover every prefix that writes there.
///
/// PostgreSQL silently truncates identifiers to 63 bytes, which would let two long
/// names share a table. So the names built from these, `tenant_<tenant>` and
/// `<dataset>_typed`, must fit too: tenants are at most 56 bytes, datasets 57.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

/// Why a key names no valid destination; recorded as the ledger's `skipped` reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Fewer than three parts: no tenant, dataset and file.
    #[error("key has no <tenant>/<dataset>/ prefix")]
    NoPrefix,
    /// The name breaks the rule, and no case folding would mend it.
    #[error("{what} name \"{}\" must be ASCII and match ^[a-z][a-z0-9_]*$ as written", shown(.name))]
    BadName {
        /// `tenant` or `dataset`.
        what: &'static str,
        /// The name as written.
        name: String,
    },
    /// Named apart from [`KeyError::BadName`] because it is the alias the rule exists
    /// for: the name is only valid once case-folded, and folding is never done.
    #[error("{what} name \"{}\" is not written in lower-case ASCII; it would fold into \"{folded}\", but a tenant or dataset has one spelling: write it as \"{folded}\" if that is meant", shown(.name))]
    Folds {
        /// `tenant` or `dataset`.
        what: &'static str,
        /// The name as written.
        name: String,
        /// The valid name Unicode lower-casing would make of it.
        folded: String,
    },
    /// A dataset named like another dataset's typed view: the dataset, then the one
    /// whose view it would be.
    #[error("dataset name {0:?} ends in `_typed`, which names the typed view of dataset {1:?}")]
    Reserved(String, String),
    /// Past the byte limit of its kind.
    #[error("{what} name {name:?} is longer than {max} bytes (PostgreSQL identifiers built from it would be truncated)")]
    TooLong {
        /// `tenant` or `dataset`.
        what: &'static str,
        /// The name as written.
        name: String,
        /// The limit: 56 for a tenant, 57 for a dataset.
        max: usize,
    },
}

/// `name` for an error message: non-ASCII and control characters as `\u{..}` escapes,
/// so that a look-alike shows as what it is (`\u{212a}cme`, not a `K` that is no K).
fn shown(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '\\' && c != '"' || c == ' ' {
                c.to_string()
            } else {
                c.escape_default().to_string()
            }
        })
        .collect()
}

/// Whether `name` matches `^[a-z][a-z0-9_]*$`, byte by byte: any non-ASCII byte fails.
fn follows_the_rule(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Name {
    /// Checks `raw`, as written, against the name rule and the byte limit `max`.
    fn parse(what: &'static str, raw: &str, max: usize) -> Result<Self, KeyError> {
        if !follows_the_rule(raw) {
            // Folding is computed only to say what the name was mistaken for.
            let folded = raw.to_lowercase();
            if follows_the_rule(&folded) {
                return Err(KeyError::Folds {
                    what,
                    name: raw.to_owned(),
                    folded,
                });
            }
            return Err(KeyError::BadName {
                what,
                name: raw.to_owned(),
            });
        }
        let name = raw;
        if name.len() > max {
            return Err(KeyError::TooLong {
                what,
                name: raw.to_owned(),
                max,
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// A tenant name on its own (the records API's path), under the same rule and
    /// limit as in a key.
    pub fn tenant(raw: &str) -> Result<Self, KeyError> {
        Self::parse("tenant", raw, 56)
    }

    /// The name, as written and checked.
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
        let tenant = Name::tenant(tenant)?;
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
            Destination::new("acme", "orders_typed"),
            Err(KeyError::Reserved("orders_typed".into(), "orders".into()))
        );
        assert!(Destination::new("acme", "typed").is_ok());
    }

    #[test]
    fn plain_and_hive_keys_resolve() {
        let d = Destination::from_key("acme/orders/2026/11/a.csv").unwrap();
        assert_eq!((d.tenant.as_str(), d.dataset.as_str()), ("acme", "orders"));
        let d = Destination::from_key("tenant=acme/dataset=customers/p=1/a.ndjson").unwrap();
        assert_eq!(
            (d.tenant.as_str(), d.dataset.as_str()),
            ("acme", "customers")
        );
        assert_eq!(d.schema(), "tenant_acme");
        let d = Destination::from_key("a_1/b2_/x.csv").unwrap();
        assert_eq!((d.tenant.as_str(), d.dataset.as_str()), ("a_1", "b2_"));
    }

    /// The folded spelling a refused name is reported with, if any.
    fn folds_into(key: &str) -> Option<String> {
        match Destination::from_key(key) {
            Err(KeyError::Folds { folded, .. }) => Some(folded),
            other => panic!("{key:?} must be refused as folding, got {other:?}"),
        }
    }

    #[test]
    fn upper_case_is_refused_not_folded() {
        assert_eq!(folds_into("Acme/orders/x.csv").as_deref(), Some("acme"));
        assert_eq!(folds_into("acme/ORDERS/x.csv").as_deref(), Some("orders"));
        assert_eq!(
            folds_into("tenant=ACME/dataset=orders/x.csv").as_deref(),
            Some("acme")
        );
        let err = Destination::new("Acme", "orders").unwrap_err().to_string();
        assert!(
            err.contains("tenant name \"Acme\"") && err.contains("write it as \"acme\""),
            "{err}"
        );
    }

    #[test]
    fn unicode_look_alikes_never_reach_a_tenant() {
        // The Kelvin sign lower-cases to an ASCII `k`: exactly the alias to refuse.
        assert_eq!(
            folds_into("\u{212A}cme/orders/x.csv").as_deref(),
            Some("kcme")
        );
        let err = Destination::from_key("\u{212A}cme/orders/x.csv").unwrap_err();
        assert!(
            err.to_string().contains("tenant name \"\\u{212a}cme\""),
            "the look-alike is shown escaped: {err}"
        );
        // U+0130 (I with dot above) lower-cases to `i` + U+0307: not ASCII either way.
        assert!(matches!(
            Destination::from_key("\u{130}nc/orders/x.csv"),
            Err(KeyError::BadName { what: "tenant", .. })
        ));
        assert!(matches!(
            Destination::from_key("acme/\u{130}tems/x.csv"),
            Err(KeyError::BadName {
                what: "dataset",
                ..
            })
        ));
        // U+017F (long s) is already lower case; it upper-cases to `S`, never folds to `s`
        // here, and is refused like any other non-ASCII letter.
        assert!(matches!(
            Destination::from_key("acme/\u{17F}ales/x.csv"),
            Err(KeyError::BadName {
                what: "dataset",
                ..
            })
        ));
        // Fullwidth letters (what NFKC would fold to ASCII) and their upper case.
        for key in [
            "\u{FF41}\u{FF43}\u{FF4D}\u{FF45}/orders/x.csv",
            "\u{FF21}\u{FF23}\u{FF2D}\u{FF25}/orders/x.csv",
            "acme/\u{FF4F}rders/x.csv",
        ] {
            assert!(
                matches!(Destination::from_key(key), Err(KeyError::BadName { .. })),
                "{key:?}"
            );
        }
        // Other look-alikes: Cyrillic `а`, a combining mark, a zero-width space.
        for key in [
            "\u{430}cme/orders/x.csv",
            "acme\u{301}/orders/x.csv",
            "ac\u{200B}me/orders/x.csv",
        ] {
            assert!(
                matches!(Destination::from_key(key), Err(KeyError::BadName { .. })),
                "{key:?}"
            );
        }
        // Upper-case look-alikes that Unicode folds into ASCII are refused as folds.
        assert_eq!(
            folds_into("acme/\u{212A}eys/x.csv").as_deref(),
            Some("keys")
        );
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
