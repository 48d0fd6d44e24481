//! The dashboard: a handful of static files (HTML, CSS, JavaScript modules) compiled into the
//! binary and served under `/ui/`. The files hold no data: the page's script reads everything
//! through the authenticated REST API, with the session cookie the login sets. So the files are
//! public, identical for every caller, and `/` sends a browser to them.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// The policy of every dashboard response: scripts, styles and data only from this origin, no
/// inline code, no framing, and Trusted Types so no string can become markup.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
     require-trusted-types-for 'script'; trusted-types 'none'";

/// One embedded file.
struct File {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! file {
    ($name:literal, $type:expr) => {
        File {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/ui/static/`.
const FILES: &[File] = &[
    file!("app.css", "text/css; charset=utf-8"),
    file!("favicon.svg", "image/svg+xml"),
    file!("js/api.js", JS),
    file!("js/app.js", JS),
    file!("js/dom.js", JS),
    file!("js/pages/alerts.js", JS),
    file!("js/pages/assets.js", JS),
    file!("js/pages/audit.js", JS),
    file!("js/pages/compliance.js", JS),
    file!("js/pages/login.js", JS),
    file!("js/pages/overview.js", JS),
    file!("js/pages/scans.js", JS),
    file!("js/pages/settings.js", JS),
    file!("js/pages/vaults.js", JS),
];

const INDEX: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/index.html"));

/// The pages the shell answers for; anything else under `/ui/` is a 404.
pub const PAGES: &[&str] =
    &["", "login", "assets", "vaults", "scans", "compliance", "alerts", "audit", "settings"];

/// The dashboard's routes. They are not API routes: they are absent from
/// [`crate::routes::ROUTES`], need no token and serve only the embedded files.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { page(INDEX, "text/html; charset=utf-8") }))
        .route("/ui/static/{*name}", get(static_file))
        .route("/ui/{*page}", get(shell))
}

/// `/ui/<page>[/<id>]`: the one HTML shell; its script renders the page the path names.
async fn shell(Path(path): Path<String>) -> Result<Response, ApiError> {
    let first = path.split('/').next().unwrap_or_default();
    if PAGES.contains(&first) && path.split('/').count() <= 2 {
        Ok(page(INDEX, "text/html; charset=utf-8"))
    } else {
        Err(ApiError::not_found(format!("dashboard page /ui/{path}")))
    }
}

async fn static_file(Path(name): Path<String>) -> Result<Response, ApiError> {
    let file = FILES
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::not_found(format!("dashboard file {name}")))?;
    Ok(page(file.body, file.content_type))
}

fn page(body: &'static [u8], content_type: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
        ),
        // Files change only with the binary; revalidating costs little and avoids stale code.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_embedded() {
        for file in FILES.iter().filter(|f| f.name.ends_with(".js")) {
            let text = std::str::from_utf8(file.body).expect("utf-8");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split(['\'', '"']).nth(1) else { continue };
                let base = file.name.rsplit_once('/').map_or("", |(dir, _)| dir);
                let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
                for part in spec.split('/') {
                    match part {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        other => parts.push(other),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    FILES.iter().any(|f| f.name == resolved),
                    "{} imports {spec} ({resolved}), which is not embedded",
                    file.name
                );
            }
        }
    }

    #[test]
    fn the_shell_loads_only_embedded_files_and_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(INDEX).expect("utf-8");
        assert!(!html.contains("<script>") && !html.contains("style="), "inline code in index");
        for attr in ["src=\"/ui/static/", "href=\"/ui/static/"] {
            for piece in html.split(attr).skip(1) {
                let name = piece.split('"').next().unwrap_or_default();
                assert!(FILES.iter().any(|f| f.name == name), "{name} is not embedded");
            }
        }
    }
}
