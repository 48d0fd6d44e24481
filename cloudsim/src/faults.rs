//! Fault injection and request counters. A fault makes the next N requests to a target
//! (`vault:<name>`, `arm` or `token`) answer a given status; counters record how many
//! requests each target served per status so tests can prove that clients retried.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A pending fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// Target: `vault:<name>`, `arm` or `token`.
    pub target: String,
    /// HTTP status to answer.
    pub status: u16,
    /// How many requests it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Seconds for a Retry-After header (none when absent).
    pub retry_after: Option<u64>,
}

fn one() -> u32 {
    1
}

#[derive(Default)]
struct Inner {
    faults: BTreeMap<String, Fault>,
    counters: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The fault table and counters, shared by every listener.
#[derive(Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs (or replaces) the fault for its target.
    pub fn set(&self, f: Fault) {
        self.lock().faults.insert(f.target.clone(), f);
    }

    /// Removes all faults.
    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// Consumes one occurrence of the target's fault, if any.
    pub fn take(&self, target: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let f = inner.faults.get_mut(target)?;
        if f.count == 0 {
            inner.faults.remove(target);
            return None;
        }
        f.count -= 1;
        let out = f.clone();
        if f.count == 0 {
            inner.faults.remove(target);
        }
        Some(out)
    }

    /// Pending faults.
    pub fn list(&self) -> Vec<Fault> {
        self.lock().faults.values().cloned().collect()
    }

    /// Counts one served request.
    pub fn record(&self, target: &str, status: u16) {
        let mut inner = self.lock();
        *inner
            .counters
            .entry(target.to_string())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
    }

    /// Snapshot of the counters.
    pub fn counters(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.lock().counters.clone()
    }

    /// Resets the counters.
    pub fn reset_counters(&self) {
        self.lock().counters.clear();
    }
}
