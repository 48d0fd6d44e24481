//! The audit trail: append-only entries chained by HMAC, written in the same transaction as the
//! change they record (if the entry cannot be written, the change rolls back with it).
//!
//! An entry's HMAC covers its time, actor, source, event type, target and details (as canonical
//! JSON: sorted keys) and the previous entry's HMAC. [`verify`] walks the chain from the last
//! retention anchor and names the first entry that does not match.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::{FromRow, PgConnection, PgPool};

/// Who did something, from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// A username, `system:worker`, `schedule:<name>`, or `anonymous`.
    pub name: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Actor {
    /// A background actor (a worker, a schedule), with no address.
    pub fn system(name: impl Into<String>) -> Self {
        Self { name: name.into(), source_ip: None, user_agent: None }
    }
}

/// One stored entry.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub event_type: String,
    pub target: Option<String>,
    /// What the event changed or why it failed; never a secret value.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[serde(skip)]
    pub prev_hmac: String,
    pub hmac: String,
}

/// The HMAC key of the chain, derived from `SECRET_KEY`.
pub fn key_from(secret_key: &str) -> Vec<u8> {
    crate::config::derive_key(secret_key, "audit").into_bytes()
}

#[expect(clippy::too_many_arguments, reason = "the fields of one entry, in one place")]
fn mac(
    key: &[u8],
    at: DateTime<Utc>,
    actor: &str,
    source_ip: Option<&str>,
    user_agent: Option<&str>,
    event_type: &str,
    target: Option<&str>,
    details: &serde_json::Value,
    prev: &str,
) -> String {
    let mut m = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    let fields = [
        at.to_rfc3339_opts(SecondsFormat::Micros, true),
        actor.to_owned(),
        source_ip.unwrap_or_default().to_owned(),
        user_agent.unwrap_or_default().to_owned(),
        event_type.to_owned(),
        target.unwrap_or_default().to_owned(),
        details.to_string(),
        prev.to_owned(),
    ];
    for field in fields {
        // Length-prefixed, so no two different entries concatenate to the same bytes.
        m.update(&(field.len() as u64).to_be_bytes());
        m.update(field.as_bytes());
    }
    hex::encode(m.finalize().into_bytes())
}

/// Appends an entry inside `conn`'s transaction. A transaction-scoped advisory lock orders
/// concurrent writers, so each entry chains to the one committed before it.
pub async fn record(
    conn: &mut PgConnection,
    key: &[u8],
    actor: &Actor,
    event_type: &str,
    target: Option<&str>,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('certifyclouds:audit-chain'))")
        .execute(&mut *conn)
        .await?;
    let prev: Option<String> =
        sqlx::query_scalar("SELECT hmac FROM audit_entries ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let prev = match prev {
        Some(p) => p,
        None => sqlx::query_scalar("SELECT last_hmac FROM audit_anchors ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or_default(),
    };

    // Postgres keeps microseconds: truncate first so the HMAC covers what is stored.
    let now = Utc::now();
    let at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let details = canonical(details);
    let hmac = mac(
        key,
        at,
        &actor.name,
        actor.source_ip.as_deref(),
        actor.user_agent.as_deref(),
        event_type,
        target,
        &details,
        &prev,
    );
    sqlx::query(
        "INSERT INTO audit_entries (at, actor, source_ip, user_agent, event_type, target, \
             details, prev_hmac, hmac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(at)
    .bind(&actor.name)
    .bind(&actor.source_ip)
    .bind(&actor.user_agent)
    .bind(event_type)
    .bind(target)
    .bind(&details)
    .bind(&prev)
    .bind(&hmac)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Round-trips through the same representation Postgres hands back (`jsonb`), so the HMAC
/// computed now matches the one recomputed from the stored row.
fn canonical(details: serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&details.to_string()).unwrap_or(details)
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AuditVerification)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub valid: bool,
    pub checked: i64,
    /// The HMAC of the newest entry: the chain head an export quotes.
    pub head: Option<String>,
    /// The first entry that does not match, and why.
    pub first_break: Option<Break>,
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AuditChainBreak)]
#[serde(rename_all = "camelCase")]
pub struct Break {
    pub entry_id: i64,
    pub reason: String,
}

/// Walks every entry in order, in pages, recomputing each HMAC.
pub async fn verify(pool: &PgPool, key: &[u8]) -> Result<Verification, sqlx::Error> {
    let anchor: Option<(i64, String)> = sqlx::query_as(
        "SELECT last_purged_id, last_hmac FROM audit_anchors ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let (mut after, mut expected_prev) = anchor.unwrap_or((0, String::new()));
    let mut checked = 0;
    let mut head = None;
    loop {
        let page = sqlx::query_as::<_, Entry>(
            "SELECT * FROM audit_entries WHERE id > $1 ORDER BY id LIMIT 1000",
        )
        .bind(after)
        .fetch_all(pool)
        .await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            let broken = |reason: &str| Verification {
                valid: false,
                checked,
                head: None,
                first_break: Some(Break { entry_id: e.id, reason: reason.to_owned() }),
            };
            if e.prev_hmac != expected_prev {
                return Ok(broken(
                    "its link to the previous entry does not match: an entry \
                                  before it was removed or changed",
                ));
            }
            let recomputed = mac(
                key,
                e.at,
                &e.actor,
                e.source_ip.as_deref(),
                e.user_agent.as_deref(),
                &e.event_type,
                e.target.as_deref(),
                &e.details,
                &e.prev_hmac,
            );
            if recomputed != e.hmac {
                return Ok(broken("its content does not match its HMAC: it was edited"));
            }
            checked += 1;
            after = e.id;
            expected_prev = e.hmac.clone();
            head = Some(e.hmac);
        }
    }
    Ok(Verification { valid: true, checked, head, first_break: None })
}

/// Filters of the audit list and export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub event_type: Option<String>,
    pub actor: Option<String>,
}

fn push_filter(q: &mut sqlx::QueryBuilder<sqlx::Postgres>, filter: &Filter) {
    if let Some(start) = filter.start {
        q.push(" AND at >= ").push_bind(start);
    }
    if let Some(end) = filter.end {
        q.push(" AND at < ").push_bind(end);
    }
    if let Some(t) = &filter.event_type {
        // `auth` matches `auth.login.failed`; an exact name matches itself.
        q.push(" AND (event_type = ").push_bind(t.clone());
        q.push(" OR event_type LIKE ").push_bind(format!("{}.%", t.replace('%', "")));
        q.push(")");
    }
    if let Some(a) = &filter.actor {
        q.push(" AND actor = ").push_bind(a.clone());
    }
}

/// A page of entries, newest first, and the total.
pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Entry>, i64), sqlx::Error> {
    let mut q = sqlx::QueryBuilder::new("SELECT * FROM audit_entries WHERE true");
    push_filter(&mut q, filter);
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
    let rows = q.build_query_as::<Entry>().fetch_all(pool).await?;

    let mut count = sqlx::QueryBuilder::new("SELECT count(*) FROM audit_entries WHERE true");
    push_filter(&mut count, filter);
    let total = count.build_query_scalar().fetch_one(pool).await?;
    Ok((rows, total))
}

/// Entries after `after_id` in chain order, at most `limit`: exports page through with this so
/// a large range never sits in memory at once.
pub async fn page_after(
    pool: &PgPool,
    filter: &Filter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut q = sqlx::QueryBuilder::new("SELECT * FROM audit_entries WHERE id > ");
    q.push_bind(after_id);
    push_filter(&mut q, filter);
    q.push(" ORDER BY id LIMIT ").push_bind(limit);
    q.build_query_as::<Entry>().fetch_all(pool).await
}

/// How many entries match, and the HMAC of the newest entry overall (the chain head).
pub async fn summary(pool: &PgPool, filter: &Filter) -> Result<(i64, Option<String>), sqlx::Error> {
    let mut count = sqlx::QueryBuilder::new("SELECT count(*) FROM audit_entries WHERE true");
    push_filter(&mut count, filter);
    let total = count.build_query_scalar().fetch_one(pool).await?;
    let head = sqlx::query_scalar("SELECT hmac FROM audit_entries ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await?;
    Ok((total, head))
}
