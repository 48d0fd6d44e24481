//! One integration-test binary for the whole product: the API and a worker run in-process,
//! against the machine's Postgres and Redis (a fresh database and Redis key prefix per test)
//! and a cloudsim process per test that plays Azure over HTTPS.

mod alerts;
mod alerts_abuse;
mod alerts_scans;
mod alerts_smtp;
mod audit;
mod auth;
mod bad_input;
mod browser;
mod caches;
mod compliance;
mod cron;
mod dashboard;
mod harness;
mod metrics;
mod openapi;
mod peers;
mod scan;
mod settings;
mod subscriptions;
mod users;
mod workers;
