//! The admin API under `/_sim` on the main port (no authentication): fault injection, request
//! counters, ground-truth statistics and the vault directory.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::faults::Fault;
use crate::http::{Resp, json as json_resp, now};
use crate::state::{Sim, VaultCounts};

fn bad(msg: &str) -> Resp {
    json_resp(StatusCode::BAD_REQUEST, &json!({"error": msg}))
}

fn valid_target(sim: &Sim, target: &str) -> bool {
    match target.strip_prefix("vault:") {
        Some(name) => sim.vaults.iter().any(|v| v.name.eq_ignore_ascii_case(name)),
        None => matches!(target, "arm" | "token"),
    }
}

/// Handles `/_sim/...`; `rest` are the segments after `_sim`.
pub fn handle(sim: &Sim, method: &Method, rest: &[String], body: &[u8]) -> Resp {
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method.clone(), r.as_slice()) {
        (Method::GET, ["health"]) => json_resp(StatusCode::OK, &json!({"status": "ok"})),
        (Method::GET, ["stats"]) => json_resp(StatusCode::OK, &json!(sim.stats(now()))),
        (Method::GET, ["vaults"]) => {
            let list: Vec<_> = sim
                .vaults
                .iter()
                .map(|v| {
                    json!({
                        "name": v.name,
                        "subscriptionId": v.subscription_id,
                        "resourceGroup": v.resource_group,
                        "location": v.location,
                        "vaultUri": format!("{}/", v.base_url()),
                        "port": v.addr.port(),
                        "reachable": v.reachable(),
                        "emptyPages": v.empty_pages,
                        "rbac": v.rbac,
                        "purgeProtection": v.purge_protection,
                        "counts": VaultCounts::of(v),
                    })
                })
                .collect();
            json_resp(StatusCode::OK, &json!(list))
        }
        (Method::GET, ["faults"]) => json_resp(StatusCode::OK, &json!(sim.faults.list())),
        (Method::POST, ["faults"]) => {
            let f: Fault = match serde_json::from_slice(body) {
                Ok(f) => f,
                Err(e) => return bad(&format!("invalid fault JSON: {e}")),
            };
            if !valid_target(sim, &f.target) {
                return bad(&format!(
                    "unknown target {:?}: use \"arm\", \"token\" or \"vault:<name>\"",
                    f.target
                ));
            }
            if !(400..=599).contains(&f.status) {
                return bad("status must be 400-599");
            }
            let target = match f.target.strip_prefix("vault:") {
                Some(name) => sim
                    .vaults
                    .iter()
                    .find(|v| v.name.eq_ignore_ascii_case(name))
                    .map(|v| format!("vault:{}", v.name))
                    .unwrap_or(f.target.clone()),
                None => f.target.clone(),
            };
            let f = Fault { target, ..f };
            sim.faults.set(f.clone());
            json_resp(StatusCode::CREATED, &json!(f))
        }
        (Method::DELETE, ["faults"]) => {
            sim.faults.clear();
            json_resp(StatusCode::OK, &json!({"cleared": true}))
        }
        (Method::GET, ["requests"]) => json_resp(StatusCode::OK, &json!(sim.faults.counters())),
        (Method::DELETE, ["requests"]) => {
            sim.faults.reset_counters();
            json_resp(StatusCode::OK, &json!({"cleared": true}))
        }
        _ => json_resp(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown admin endpoint", "endpoints": [
                "GET /_sim/stats", "GET /_sim/vaults", "GET|POST|DELETE /_sim/faults",
                "GET|DELETE /_sim/requests", "GET /_sim/health"]}),
        ),
    }
}
