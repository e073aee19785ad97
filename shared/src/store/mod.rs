//! The SQL of bronze's own bookkeeping and tables, one module per subject: the object
//! ledger, the datasets' settings, the loads with what they record (rejects, quality,
//! inference, digests), and the per-dataset tables.
//!
//! Every identifier that comes from outside (tenant, dataset) has passed the name rule
//! in [`crate::keys`] and is still quoted here ([`QuotedTable`]).

mod datasets;
mod indexes;
mod ledger;
mod loads;
mod savepoint;
mod tables;

pub use datasets::{dataset_settings, set_dataset, DatasetSettings, SettingsError};
pub use indexes::{api_indexes, set_api_indexes, IndexError, PAYLOAD};
pub use ledger::{
    begin_attempt, claim, mark_out_of_time, mark_retry, record_object, set_status, Attempt, Claim,
    NewObject, ObjectRow, Recorded, Status, MAX_DEATHS,
};
pub use loads::{
    finish_load, record_digest, record_inference, record_quality, record_rejects, start_load,
    Lineage, LoadCounts,
};
pub use savepoint::Savepoint;
pub use tables::{
    create_dataset_indexes, dataset_table, ensure_dataset_table, lock_dataset, QuotedTable,
};
