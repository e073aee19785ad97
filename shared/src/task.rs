//! The load task dispatch sends and load receives: which ledger row to load.

use serde::{Deserialize, Serialize};

/// One object to load. The ledger row (by `object_id`) is the authority for tenant,
/// dataset and status; the rest lets an operator read a queued task at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadTask {
    /// The ledger row to load.
    pub object_id: i64,
    /// The object's bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// The version dispatch saw, to read exactly that one.
    pub version_id: Option<String>,
    /// The ETag dispatch saw, for buckets without versioning.
    pub etag: Option<String>,
}
