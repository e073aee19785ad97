//! The load task dispatch sends and load receives: which ledger row to load.

use serde::{Deserialize, Serialize};

/// One object to load. The ledger row (by `object_id`) is the authority for tenant,
/// dataset and status; the rest lets an operator read a queued task at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadTask {
    pub object_id: i64,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
}
