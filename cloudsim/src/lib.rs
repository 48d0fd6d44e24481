//! cloudsim: a local, faithful simulation of Azure for demos and tests. It serves Entra ID
//! tokens (client secrets, client assertions, managed identity), Azure Resource Manager
//! (subscriptions, Key Vault and the resources that reference vaults, Resource Graph),
//! Microsoft Graph, Azure DevOps and the Key Vault data plane (one HTTPS port per vault) on
//! loopback, from a JSON scenario.

pub mod admin;
pub mod arm;
pub mod certs;
pub mod cli;
pub mod devops;
pub mod directory;
pub mod entra;
pub mod faults;
pub mod graph;
pub mod http;
pub mod identity;
pub mod keyvault;
pub mod kv_write;
pub mod resource_graph;
pub mod resources;
pub mod scenario;
pub mod server;
pub mod state;
pub mod tls;
pub mod token;
