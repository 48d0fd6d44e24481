//! The library that the API and the worker share: configuration, domain types, database access
//! (one module per aggregate), the Azure clients, the job payloads and queues, and error types.

pub mod alerts;
pub mod audit;
pub mod azure;
pub mod compliance;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod licence;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod retention;
pub mod scans;
pub mod secret;
pub mod settings;
pub mod wakeups;
