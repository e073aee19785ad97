//! bronze: files dropped into S3 become versioned, lineage-carrying rows in PostgreSQL.
//!
//! The Lambda functions and the `bronze` CLI are thin shells over this crate: the
//! handlers here take their clients as arguments so that tests and the local runner
//! drive exactly the code that runs in Lambda.

#![warn(missing_docs)]

pub mod admission;
pub mod api;
pub mod aws;
pub mod backfill;
pub mod bucket_policy;
pub mod canonical;
pub mod contract;
pub mod copy;
pub mod db;
pub mod dispatch;
pub mod events;
pub mod fault;
pub mod format;
pub mod hash;
pub mod iam;
pub mod identity;
pub mod infer;
pub mod json_tape;
pub mod jsonb_order;
pub mod keys;
pub mod limits;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod pipeline;
pub mod policy;
pub mod reconcile;
pub mod registry;
pub mod rejects;
pub mod reload;
pub mod repeats;
pub mod replay;
pub mod report;
pub mod roles;
pub mod runner;
pub mod schema;
pub mod serve;
pub mod status;
pub mod store;
pub mod task;
pub mod tenants;
pub mod tls;
pub mod typed;
