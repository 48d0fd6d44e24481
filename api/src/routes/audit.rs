//! `/audit/*`: read, verify and export the audit trail.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;
use shared::audit::{self, Entry, Filter, Verification};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::pagination::{Page, Paging};
use crate::state::AppState;

/// Rows fetched per round trip while exporting.
const EXPORT_PAGE: i64 = 500;

/// The filters of the list and the export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub format: Option<String>,
}

/// `2026-01-31` (a whole day) or an RFC 3339 time.
pub(crate) fn parse_bound(field: &str, value: &str, end: bool) -> Result<DateTime<Utc>, ApiError> {
    let at = match DateTime::parse_from_rfc3339(value) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                ApiError::invalid(
                    field,
                    "use an ISO 8601 date (2026-01-31) or time (2026-01-31T12:00:00Z)",
                )
            })?;
            // An end date includes its whole day.
            let day = if end { day.succ_opt().unwrap_or(day) } else { day };
            day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
        }
    };
    // chrono reads years far outside what Postgres stores (4713 BC to 294276 AD); such a
    // bound would fail in the database instead of here.
    if !(1..=9999).contains(&at.year()) {
        return Err(ApiError::invalid(field, "the year must be between 1 and 9999"));
    }
    Ok(at)
}

impl AuditQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        let start =
            self.start_date.as_deref().map(|v| parse_bound("start_date", v, false)).transpose()?;
        let end = self.end_date.as_deref().map(|v| parse_bound("end_date", v, true)).transpose()?;
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Err(ApiError::invalid("end_date", "must be after start_date"));
        }
        Ok(Filter {
            start,
            end,
            event_type: self.event_type.clone().filter(|t| !t.is_empty()),
            actor: self.actor.clone().filter(|a| !a.is_empty()),
        })
    }
}

/// `GET /audit/entries`, newest first.
pub async fn entries(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Page<Entry>>, ApiError> {
    let (limit, offset) = Paging { limit: query.limit, offset: query.offset }.validate()?;
    let filter = query.filter()?;
    let (items, total) = audit::list(&state.pool, &filter, limit, offset).await?;
    Ok(Json(Page { items, total, limit, offset }))
}

/// `GET /audit/verify`: walks the whole chain and names the first break.
pub async fn verify(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<Verification>, ApiError> {
    Ok(Json(audit::verify(&state.pool, &state.audit_key).await?))
}

/// What an export streams: a header, then pages of entries, then a footer.
enum Stage {
    Start,
    Rows { after: i64, first: bool },
    Done,
}

/// `GET /audit/export?format=json|csv|pdf`: the filtered entries in chain order, streamed page
/// by page, with a manifest (filters, count, chain head).
pub async fn export(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let format = query.format.clone().unwrap_or_else(|| "json".to_owned());
    let filter = query.filter()?;
    let (count, head) = audit::summary(&state.pool, &filter).await?;
    let manifest = serde_json::json!({
        "generatedAt": Utc::now(),
        "filters": {
            "startDate": query.start_date, "endDate": query.end_date,
            "eventType": query.event_type, "actor": query.actor,
        },
        "entryCount": count,
        "chainHead": head,
    });

    match format.as_str() {
        "json" | "csv" => {}
        "pdf" => {
            let mut entries = Vec::new();
            let mut after = 0;
            loop {
                let page = audit::page_after(&state.pool, &filter, after, EXPORT_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                entries.extend(page);
            }
            let pdf = crate::pdf::audit_report(&manifest, &entries);
            return Ok((
                [
                    (header::CONTENT_TYPE, "application/pdf"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"audit.pdf\""),
                ],
                pdf,
            )
                .into_response());
        }
        _ => return Err(ApiError::invalid("format", "expected one of: json, csv, pdf")),
    }

    let csv = format == "csv";
    let pool = state.pool.clone();
    let stream = futures::stream::unfold(Stage::Start, move |stage| {
        let pool = pool.clone();
        let filter = filter.clone();
        let manifest = manifest.clone();
        async move {
            match stage {
                Stage::Start => {
                    let text = if csv {
                        format!(
                            "# certifyclouds audit export; entries {}; chain head {}\n{}\n",
                            manifest["entryCount"],
                            manifest["chainHead"].as_str().unwrap_or("none"),
                            CSV_HEADER
                        )
                    } else {
                        format!("{{\"manifest\":{manifest},\"entries\":[")
                    };
                    Some((Ok(Bytes::from(text)), Stage::Rows { after: 0, first: true }))
                }
                Stage::Rows { after, first } => {
                    match audit::page_after(&pool, &filter, after, EXPORT_PAGE).await {
                        Err(e) => {
                            tracing::error!(error = %e, "audit export failed mid-stream");
                            Some((Err(std::io::Error::other("export failed")), Stage::Done))
                        }
                        Ok(page) if page.is_empty() => {
                            let tail = if csv { String::new() } else { "]}".to_owned() };
                            Some((Ok(Bytes::from(tail)), Stage::Done))
                        }
                        Ok(page) => {
                            let last = page.last().map_or(after, |e| e.id);
                            let mut text = String::new();
                            for (i, entry) in page.iter().enumerate() {
                                if csv {
                                    text.push_str(&csv_row(entry));
                                } else {
                                    if !(first && i == 0) {
                                        text.push(',');
                                    }
                                    text.push_str(
                                        &serde_json::to_string(entry).unwrap_or_default(),
                                    );
                                }
                            }
                            Some((Ok(Bytes::from(text)), Stage::Rows { after: last, first: false }))
                        }
                    }
                }
                Stage::Done => None,
            }
        }
    });

    let (content_type, name) = if csv {
        ("text/csv; charset=utf-8", "attachment; filename=\"audit.csv\"")
    } else {
        ("application/json", "attachment; filename=\"audit.json\"")
    };
    Ok((
        [(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, name)],
        Body::from_stream(stream),
    )
        .into_response())
}

const CSV_HEADER: &str = "id,at,actor,source_ip,user_agent,event_type,target,details,hmac";

fn csv_row(e: &Entry) -> String {
    let cells = [
        e.id.to_string(),
        e.at.to_rfc3339(),
        e.actor.clone(),
        e.source_ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
        e.event_type.clone(),
        e.target.clone().unwrap_or_default(),
        e.details.to_string(),
        e.hmac.clone(),
    ];
    let mut row = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    row.push('\n');
    row
}

/// Quotes a cell, and defuses text a spreadsheet would run as a formula.
fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) || guarded != value {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn formula_cells_are_defused_and_quoted() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
