//! Azure Resource Graph (`POST /providers/Microsoft.ResourceGraph/resources`, api-version
//! 2022-10-01) over the vaults and the resources that reference them. It understands a small,
//! honest subset of KQL and refuses the rest with a 400 `InvalidQuery`:
//!
//! ```text
//! Resources
//! | where <field> (== | =~ | != | !~) '<text>' [and ...]
//! | where <field> (in | in~ | !in | !in~) ('<a>', '<b>', ...)
//! | project <field>, <field>, ...
//! | order by <field> [asc | desc]
//! | limit <n>            (also: take <n>)
//! ```
//!
//! Fields are the top-level columns of the `Resources` table (`id`, `name`, `type`, `kind`,
//! `location`, `resourceGroup`, `subscriptionId`, `tenantId`, `properties`, `tags`, ...).

use std::cmp::Ordering;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::{Resp, guid, json as json_resp};
use crate::state::{Sim, World};

#[derive(Deserialize)]
struct Request {
    query: Option<String>,
    #[serde(default)]
    subscriptions: Vec<String>,
    #[serde(default)]
    options: Options,
}

#[derive(Deserialize, Default)]
struct Options {
    #[serde(rename = "$top")]
    top: Option<usize>,
    #[serde(rename = "$skip")]
    skip: Option<usize>,
    #[serde(rename = "$skipToken")]
    skip_token: Option<String>,
    #[serde(rename = "resultFormat")]
    result_format: Option<String>,
}

enum Op {
    Where(Vec<Cond>),
    Project(Vec<String>),
    Order(String, bool),
    Limit(usize),
}

struct Cond {
    field: String,
    negate: bool,
    case_insensitive: bool,
    values: Vec<String>,
}

fn invalid(detail: &str) -> Resp {
    let ts = crate::http::timestamp_7();
    json_resp(
        StatusCode::BAD_REQUEST,
        &json!({"error": {
            "code": "BadRequest",
            "message": format!(
                "Please provide below info when asking for support: timestamp = {ts}, \
                 correlationId = {}.",
                guid()
            ),
            "details": [
                {"code": "InvalidQuery", "message": "Query is invalid. Please refer to the \
                    documentation for the Azure Resource Graph service and fix the error before \
                    retrying."},
                {"code": "ParserFailure", "message": detail},
            ],
        }}),
    )
}

fn literal(s: &str) -> Option<String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"')))?;
    Some(inner.to_string())
}

fn ident(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| s.to_string())
}

fn parse_cond(text: &str) -> Result<Cond, String> {
    let text = text.trim();
    for (op, negate, ci) in
        [("!in~", true, true), ("!in", true, false), ("in~", false, true), ("in", false, false)]
    {
        let pat = format!(" {op} ");
        if let Some((field, rest)) = text.split_once(&pat) {
            let field = ident(field).ok_or_else(|| format!("bad column name '{field}'"))?;
            let list = rest
                .trim()
                .strip_prefix('(')
                .and_then(|x| x.strip_suffix(')'))
                .ok_or_else(|| format!("expected a parenthesised list after '{op}'"))?;
            let values = list
                .split(',')
                .map(|v| literal(v).ok_or_else(|| format!("expected a string literal: {v}")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Cond { field, negate, case_insensitive: ci, values });
        }
    }
    for (op, negate, ci) in
        [("==", false, false), ("=~", false, true), ("!=", true, false), ("!~", true, true)]
    {
        if let Some((field, value)) = text.split_once(op) {
            let field = ident(field).ok_or_else(|| format!("bad column name '{field}'"))?;
            let value =
                literal(value).ok_or_else(|| format!("expected a string literal: {value}"))?;
            return Ok(Cond { field, negate, case_insensitive: ci, values: vec![value] });
        }
    }
    Err(format!("cloudsim does not understand the condition '{text}'"))
}

fn parse(query: &str) -> Result<Vec<Op>, String> {
    let mut parts = query.split('|');
    let table = parts.next().unwrap_or("").trim();
    if !table.eq_ignore_ascii_case("resources") {
        return Err(format!("cloudsim only serves the Resources table, not '{table}'"));
    }
    let mut ops = Vec::new();
    for part in parts {
        let part = part.trim();
        let (word, rest) = part.split_once(char::is_whitespace).unwrap_or((part, ""));
        let rest = rest.trim();
        let op = match word.to_ascii_lowercase().as_str() {
            "where" => {
                Op::Where(rest.split(" and ").map(parse_cond).collect::<Result<Vec<_>, _>>()?)
            }
            "project" => Op::Project(
                rest.split(',')
                    .map(|f| ident(f).ok_or_else(|| format!("bad column name '{f}'")))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            "order" | "sort" => {
                let rest = rest
                    .strip_prefix("by ")
                    .ok_or_else(|| format!("expected 'by' after '{word}'"))?;
                let mut it = rest.split_whitespace();
                let field = it.next().and_then(ident).ok_or("expected a column to order by")?;
                let desc = match it.next() {
                    None | Some("desc") => true,
                    Some("asc") => false,
                    Some(other) => return Err(format!("unexpected '{other}' in order by")),
                };
                Op::Order(field, desc)
            }
            "limit" | "take" => {
                Op::Limit(rest.parse().map_err(|_| format!("expected a number after '{word}'"))?)
            }
            other => return Err(format!("cloudsim does not implement the '{other}' operator")),
        };
        ops.push(op);
    }
    Ok(ops)
}

fn field<'a>(row: &'a Value, name: &str) -> Option<&'a Value> {
    row.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn holds(c: &Cond, row: &Value) -> bool {
    let have = text_of(field(row, &c.field));
    let hit = c
        .values
        .iter()
        .any(|v| if c.case_insensitive { have.eq_ignore_ascii_case(v) } else { have == *v });
    hit != c.negate
}

/// All rows of the `Resources` table.
fn rows(sim: &Sim, world: &World) -> Vec<Value> {
    let mut out: Vec<Value> = world
        .vaults
        .iter()
        .map(|v| {
            let full = crate::arm::vault_json(sim, v);
            json!({
                "id": v.resource_id(),
                "name": v.name,
                "type": "microsoft.keyvault/vaults",
                "tenantId": sim.tenant_id,
                "kind": "",
                "location": v.location,
                "resourceGroup": v.resource_group.to_lowercase(),
                "subscriptionId": v.subscription_id,
                "managedBy": "",
                "sku": full["properties"]["sku"],
                "plan": null,
                "properties": full["properties"],
                "tags": v.tags,
                "identity": null,
                "zones": null,
                "extendedLocation": null,
            })
        })
        .collect();
    out.extend(world.deps.iter().map(|d| crate::resources::generic_row(sim, world, d)));
    out
}

/// Answers a Resource Graph query.
pub fn query(sim: &Sim, world: &World, body: &[u8]) -> Resp {
    let req: Request = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return invalid(&format!("the request body is not a valid query request: {e}")),
    };
    let Some(query) = req.query else {
        return invalid("the request body has no 'query'");
    };
    if req.options.result_format.as_deref().is_some_and(|f| f != "objectArray") {
        return invalid("cloudsim answers only resultFormat 'objectArray'");
    }
    let ops = match parse(&query) {
        Ok(o) => o,
        Err(e) => return invalid(&e),
    };
    let mut data: Vec<Value> = rows(sim, world)
        .into_iter()
        .filter(|r| {
            req.subscriptions.is_empty()
                || req
                    .subscriptions
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&text_of(field(r, "subscriptionId"))))
        })
        .collect();
    for op in &ops {
        match op {
            Op::Where(conds) => data.retain(|r| conds.iter().all(|c| holds(c, r))),
            Op::Order(f, desc) => data.sort_by(|a, b| {
                let o = text_of(field(a, f)).cmp(&text_of(field(b, f)));
                if *desc { o.reverse() } else { o }
            }),
            Op::Limit(n) => data.truncate(*n),
            Op::Project(fields) => {
                data = data
                    .into_iter()
                    .map(|r| {
                        let m: Map<String, Value> = fields
                            .iter()
                            .map(|f| (f.clone(), field(&r, f).cloned().unwrap_or(Value::Null)))
                            .collect();
                        Value::Object(m)
                    })
                    .collect();
            }
        }
    }
    if !ops.iter().any(|o| matches!(o, Op::Order(..))) {
        data.sort_by(|a, b| {
            text_of(field(a, "id")).cmp(&text_of(field(b, "id"))).then(Ordering::Equal)
        });
    }
    let total = data.len();
    let top = req.options.top.unwrap_or(1000).clamp(1, 1000);
    let start = match &req.options.skip_token {
        Some(tok) => match URL_SAFE
            .decode(tok)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("arg:").and_then(|n| n.parse::<usize>().ok()))
        {
            Some(n) => n,
            None => return invalid("the $skipToken is not one cloudsim issued"),
        },
        None => req.options.skip.unwrap_or(0),
    };
    let end = (start + top).min(total);
    let page: Vec<Value> = data.get(start..end).map(<[Value]>::to_vec).unwrap_or_default();
    let mut out = json!({
        "totalRecords": total,
        "count": page.len(),
        "data": page,
        "facets": [],
        "resultTruncated": "false",
    });
    if end < total {
        out["$skipToken"] = json!(URL_SAFE.encode(format!("arg:{end}")));
    }
    json_resp(StatusCode::OK, &out)
}
