//! The OpenAPI 3.1 document, generated from the code: each handler's `#[utoipa::path]`
//! annotation gives its path, parameters, bodies and route-specific responses, and
//! `routes::documented()` registers the handler with axum from that same annotation, so the
//! router and the document cannot disagree. [`finish`] then adds what follows from the route
//! table rather than from one handler: the security requirement, and the error answers any
//! guarded, rate-limited or validated route can give.
//!
//! The committed copy is `api/openapi.json`; regenerate it with
//! `cargo run -p certifyclouds-api -- openapi > api/openapi.json` (or `UPDATE_OPENAPI=1 cargo test
//! -p certifyclouds-api openapi`). A test fails while the two differ.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr, Response,
    ResponseBuilder, SecurityRequirement,
};
use utoipa::{OpenApi, PartialSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::SESSION_COOKIE;
use crate::error::ErrorBody;
use crate::routes::{Access, ROUTES};

/// Where the browsable UI lives.
pub const DOCS_PATH: &str = "/docs";
/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

const BEARER: &str = "bearerAuth";
const COOKIE: &str = "sessionCookie";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CertifyClouds API",
        description = "Inventory, expiry and compliance of Azure Key Vault secrets, keys and \
            certificates. Authenticate with `POST /auth/login` and send the token as \
            `Authorization: Bearer <token>`. Lists take `limit` (1 to 500, default 50) and \
            `offset` and answer `{items, total, limit, offset}`. Every error, including \
            malformed JSON, bad path or query values and unknown routes, answers \
            `{error, detail, code}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        ErrorBody,
        registry::SettingsCategory,
        registry::SettingKey,
        registry::FrameworkId,
        registry::HistoryType,
        shared::domain::DeliveryStatus,
    )),
    tags(
        (name = "auth", description = "Log in and out; who the caller is."),
        (name = "users", description = "User management (admins)."),
        (name = "system", description = "Health, licence, Azure identity and metrics."),
        (name = "discovery", description = "Scans of the Key Vaults and the inventory they build."),
        (name = "compliance", description = "Score, violations and frameworks."),
        (name = "alerts", description = "Alert rules, test sends and the delivery history."),
        (name = "audit", description = "The append-only, HMAC-chained audit trail."),
        (name = "settings", description = "Runtime settings and history retention."),
        (name = "subscriptions", description = "The Azure subscriptions scans cover."),
    ),
)]
struct ApiDoc;

/// The document's skeleton (info, tags, shared schemas) before any route is added.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// The complete document.
pub fn document() -> Document {
    let (_router, doc) = crate::routes::documented().split_for_parts();
    finish(doc)
}

/// The complete document as pretty JSON with a final newline, as committed.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_else(|e| {
        // Serialising a document built from static annotations cannot fail at run time.
        unreachable!("the OpenAPI document does not serialise: {e}")
    });
    text.push('\n');
    text
}

/// The Content-Security-Policy of the UI: the API's own, plus the `data:` images (icons)
/// Swagger UI's stylesheet uses. Scripts and styles still come only from the API itself.
pub const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The UI at `/docs` and the document at `/openapi.json`, both from assets compiled into the
/// binary (utoipa-swagger-ui's `vendored` feature: nothing is downloaded at build or run time).
pub fn ui<S: Clone + Send + Sync + 'static>(doc: Document) -> Router<S> {
    let config = utoipa_swagger_ui::Config::from(DOCUMENT_PATH)
        .validator_url("none")
        .try_it_out_enabled(true)
        .persist_authorization(false);
    let ui = SwaggerUi::new(DOCS_PATH).url(DOCUMENT_PATH, doc).config(config);
    Router::from(ui).layer(axum::middleware::from_fn(docs_answers))
}

/// Gives the UI's pages their CSP, and an unknown asset the one error shape (Swagger UI's
/// handler answers an empty 404).
async fn docs_answers(request: Request, next: Next) -> axum::response::Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::NOT_FOUND {
        return crate::error::unknown_route().await.into_response();
    }
    let mut response = response;
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
    response
}

/// Adds the security schemes, each route's security requirement from the route table, and
/// the shared error responses.
pub fn finish(mut doc: Document) -> Document {
    let components = doc.components.get_or_insert_with(Components::new);
    components.security_schemes.insert(
        BEARER.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "The `access_token` from `POST /auth/login`. `GET /metrics` also takes \
                     `METRICS_TOKEN`.",
                ))
                .build(),
        )),
    );
    components.security_schemes.insert(
        COOKIE.to_owned(),
        RefOr::T(SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The HttpOnly session cookie the login sets, for the dashboard. With it, every \
             request but GET must also send `x-csrf-token` equal to the `cc_csrf` cookie.",
        )))),
    );
    for (name, response) in shared_responses() {
        components.responses.insert(name.to_owned(), RefOr::T(response));
    }

    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            let access = ROUTES
                .iter()
                .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path.as_str())
                .map(|(_, _, access)| *access);
            complete(operation, method, path, access);
        }
    }
    doc
}

/// The operations of a path item with their upper-case method names.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("PATCH", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

/// One operation: security from its access, then the error answers it can give.
fn complete(operation: &mut Operation, method: &str, path: &str, access: Option<Access>) {
    let guarded = matches!(access, Some(Access::User | Access::Admin));
    if guarded {
        operation.security = Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(COOKIE, Vec::<String>::new()),
        ]);
    }
    if access == Some(Access::Admin) {
        let text = operation.description.get_or_insert_with(String::new);
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str("Needs the admin role.");
    }

    let has_input = operation.parameters.as_ref().is_some_and(|p| !p.is_empty())
        || operation.request_body.is_some();
    let mut add = |status: &str, name: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    if has_input {
        add("400", "BadRequest");
    }
    if guarded {
        add("401", "Unauthorized");
    }
    if access == Some(Access::Admin) {
        add("403", "AdminOnly");
    } else if guarded && method != "GET" {
        add("403", "CsrfRejected");
    }
    if operation.request_body.is_some() {
        add("415", "UnsupportedMediaType");
    }
    if path != "/health" && path != "/metrics" {
        add("429", "RateLimited");
    }
    add("500", "InternalError");
}

/// An error response whose body is the one error shape, with an example.
fn error_response(description: &str, example: serde_json::Value) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .example(Some(example))
            .build(),
    )
}

fn example(error: &str, detail: &str, code: &str) -> serde_json::Value {
    serde_json::json!({"error": error, "detail": detail, "code": code})
}

/// The error responses many operations share, by component name.
fn shared_responses() -> Vec<(&'static str, Response)> {
    vec![
        (
            "BadRequest",
            error_response(
                "A parameter or the body is malformed or fails validation; `detail` names it \
                 (`validation_error`, `invalid_path`, `invalid_query`, `malformed_json`).",
                example("Bad Request", "limit: must be between 1 and 500", "validation_error"),
            )
            .build(),
        ),
        (
            "Unauthorized",
            error_response(
                "No token, or one that is malformed, tampered with, expired or revoked.",
                example("Unauthorized", "authentication is required", "unauthorized"),
            )
            .header(
                "www-authenticate",
                HeaderBuilder::new()
                    .schema(Some(<String as PartialSchema>::schema()))
                    .description(Some("`Bearer realm=\"certifyclouds\"`"))
                    .build(),
            )
            .build(),
        ),
        (
            "AdminOnly",
            error_response(
                "The caller lacks the admin role, or (session cookie) the CSRF token is missing \
                 or wrong.",
                example("Forbidden", "this action needs the admin role", "forbidden"),
            )
            .build(),
        ),
        (
            "CsrfRejected",
            error_response(
                "A session-cookie caller sent no CSRF token or a wrong one (bearer tokens need \
                 none).",
                example("Forbidden", "the CSRF token is missing or wrong", "forbidden"),
            )
            .build(),
        ),
        (
            "UnsupportedMediaType",
            error_response(
                "A body was sent without `Content-Type: application/json`.",
                example(
                    "Unsupported Media Type",
                    "Expected request with `Content-Type: application/json`",
                    "unsupported_media_type",
                ),
            )
            .build(),
        ),
        (
            "RateLimited",
            error_response(
                "Too many requests from this address (`RATE_LIMIT_PER_MINUTE`, \
                 `RATE_LIMIT_PER_HOUR`, `LOGIN_RATE_LIMIT_PER_MINUTE`).",
                example(
                    "Too Many Requests",
                    "more than 600 requests per minute from this address; retry in 12 s",
                    "rate_limited",
                ),
            )
            .header(
                "retry-after",
                HeaderBuilder::new()
                    .schema(Some(<i64 as PartialSchema>::schema()))
                    .description(Some("Seconds until the window ends."))
                    .build(),
            )
            .build(),
        ),
        (
            "InternalError",
            error_response(
                "An internal error, logged with the request id that `detail` quotes.",
                example(
                    "Internal Server Error",
                    "an internal error occurred; quote request id 3f0c2a1e when reporting it",
                    "internal_error",
                ),
            )
            .build(),
        ),
    ]
}

/// Schemas built from the registries they describe (settings, frameworks, history types), so
/// the document follows the registry without a second list to keep in step.
pub mod registry {
    use std::borrow::Cow;

    use shared::settings::{DEFINITIONS, Kind};
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
    use utoipa::openapi::{RefOr, SchemaFormat};
    use utoipa::{PartialSchema, ToSchema};

    fn string_enum<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> Schema {
        let values: Vec<String> = values.into_iter().map(str::to_owned).collect();
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
                .enum_values(Some(values))
                .build(),
        )
    }

    macro_rules! registry_schema {
        ($(#[$doc:meta])* $name:ident => $schema:expr) => {
            $(#[$doc])*
            pub struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    RefOr::T($schema)
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        };
    }

    registry_schema!(
        /// A settings category.
        SettingsCategory => string_enum("A settings category.", shared::settings::CATEGORIES.iter().copied())
    );

    registry_schema!(
        /// A setting's key.
        SettingKey => string_enum("A setting's key.", DEFINITIONS.iter().map(|d| d.key))
    );

    registry_schema!(
        /// A compliance framework's id.
        FrameworkId => string_enum(
            "A compliance framework's id.",
            shared::compliance::frameworks::FRAMEWORKS.iter().map(|f| f.id),
        )
    );

    registry_schema!(
        /// A kind of history that retention purges.
        HistoryType => string_enum(
            "A kind of history that retention purges.",
            shared::retention::HISTORY_TYPES.iter().copied(),
        )
    );

    registry_schema!(
        /// The body of `PUT /api/settings/{category}`: setting keys of that category with their
        /// new values (every key of the registry is listed; one of another category is refused).
        SettingsChange => {
            let mut object = ObjectBuilder::new()
                .description(Some(
                    "Setting keys of the category in the path, each with its new value.",
                ))
                .min_properties(Some(1))
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
            for def in DEFINITIONS {
                let value = match def.kind {
                    Kind::Integer { min, max } => ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::Int64,
                        )))
                        .minimum(Some(min as f64))
                        .maximum(Some(max as f64)),
                    Kind::Boolean => ObjectBuilder::new().schema_type(Type::Boolean),
                    Kind::Choice(allowed) => ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(allowed.iter().copied())),
                    Kind::Cron => ObjectBuilder::new()
                        .schema_type(Type::String)
                        .examples([serde_json::json!("0 30 2 * * *"), serde_json::json!("off")]),
                };
                let value = value.description(Some(format!("{} ({})", def.description, def.category)));
                object = object.property(def.key, value.build());
            }
            Schema::Object(object.build())
        }
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::routes::UNDOCUMENTED;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
    }

    #[test]
    fn the_committed_document_is_what_the_code_generates() {
        let generated = document_json();
        let path = committed_path();
        if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
            std::fs::write(&path, &generated).expect("writing api/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != generated {
            let line = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
            panic!(
                "api/openapi.json differs from the code from line {}; regenerate it with \
                 `cargo run -p certifyclouds-api -- openapi > api/openapi.json` \
                 (or UPDATE_OPENAPI=1 cargo test -p certifyclouds-api openapi) and commit it",
                line + 1
            );
        }
    }

    fn documented_operations(doc: &Document) -> BTreeSet<(String, String)> {
        let mut doc = doc.clone();
        let mut found = BTreeSet::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, _) in operations(item) {
                found.insert((method.to_owned(), path.clone()));
            }
        }
        found
    }

    #[test]
    fn the_document_lists_exactly_the_routes_of_the_route_table() {
        let doc = document();
        let documented = documented_operations(&doc);
        let table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .filter(|(_, path, _)| !UNDOCUMENTED.contains(path))
            .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
            .collect();
        let missing: Vec<_> = table.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&table).collect();
        assert!(missing.is_empty(), "in the route table, not in the document: {missing:?}");
        assert!(extra.is_empty(), "in the document, not in the route table: {extra:?}");
        assert_eq!(ROUTES.len(), table.len() + UNDOCUMENTED.len(), "duplicate route table rows");
    }

    #[test]
    fn every_operation_declares_its_security_and_error_answers() {
        let mut doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                let name = format!("{method} {path}");
                let access = ROUTES
                    .iter()
                    .find(|(m, p, _)| *m == method && p == path)
                    .map(|(_, _, a)| *a)
                    .unwrap_or_else(|| panic!("{name} is not in the route table"));
                let id = op.operation_id.clone().unwrap_or_else(|| panic!("{name}: no id"));
                assert!(ids.insert(id.clone()), "{name}: operation id {id} is used twice");
                assert!(op.summary.is_some(), "{name}: no summary");

                let statuses: Vec<&String> = op.responses.responses.keys().collect();
                assert!(statuses.iter().any(|s| s.starts_with('2')), "{name}: no 2xx answer");
                assert!(statuses.iter().any(|s| *s == "500"), "{name}: no 500");
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                assert_eq!(secured, access != Access::Public, "{name}: security vs route table");
                if access != Access::Public {
                    assert!(statuses.iter().any(|s| *s == "401"), "{name}: no 401");
                }
                if access == Access::Admin {
                    assert!(statuses.iter().any(|s| *s == "403"), "{name}: no 403");
                }

                // Every 4xx and 5xx answer has the one error shape (health's 503 reports the
                // same body as its 200).
                for (status, response) in &op.responses.responses {
                    if !(status.starts_with('4') || status.starts_with('5')) {
                        continue;
                    }
                    let RefOr::T(response) = response else { continue };
                    if path == "/health" && status == "503" {
                        continue;
                    }
                    let schema = response
                        .content
                        .get("application/json")
                        .and_then(|c| match c {
                            RefOr::T(content) => content.schema.as_ref(),
                            RefOr::Ref(_) => None,
                        })
                        .unwrap_or_else(|| panic!("{name} {status}: no JSON body"));
                    let RefOr::Ref(reference) = schema else {
                        panic!("{name} {status}: the body is not the error shape")
                    };
                    assert_eq!(reference.ref_location, "#/components/schemas/ErrorBody");
                }
            }
        }
    }

    /// Every `$ref` of the document names a component it defines.
    #[test]
    fn every_reference_resolves() {
        fn walk(value: &serde_json::Value, doc: &serde_json::Value, seen: &mut usize) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                        let pointer = target.trim_start_matches('#');
                        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
                        *seen += 1;
                    }
                    map.values().for_each(|v| walk(v, doc, seen));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, doc, seen)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(document()).expect("document as JSON");
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 100, "only {seen} references");
    }

    #[test]
    fn the_error_shape_is_documented_with_its_three_fields() {
        let doc = serde_json::to_value(document()).expect("document as JSON");
        let shape = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(shape["required"], serde_json::json!(["error", "detail", "code"]), "{shape}");
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
