//! cloudsim: a local, faithful simulation of Azure for demos and tests. It serves Entra ID
//! tokens, Azure Resource Manager (subscriptions, Key Vault resources) and the Key Vault data
//! plane (one HTTPS port per vault) on loopback, from a JSON scenario.

pub mod admin;
pub mod arm;
pub mod certs;
pub mod cli;
pub mod entra;
pub mod faults;
pub mod http;
pub mod keyvault;
pub mod kv_write;
pub mod scenario;
pub mod server;
pub mod state;
pub mod tls;
pub mod token;
