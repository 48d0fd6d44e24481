//! The one API error type. Every failure, including malformed JSON, bad path or query values
//! and unknown routes, answers `{"error": "<reason phrase>", "detail": "...", "code": "..."}`.
//! Internal errors are logged once here, with the request id, and answered with a generic
//! detail that carries the same id.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::request_id;

/// An error the API answers with.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// The cause of an internal error, logged and never sent.
    cause: Option<String>,
}

/// The one error shape, as it goes on the wire (and into the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "error": "Bad Request",
    "detail": "limit: must be between 1 and 500",
    "code": "validation_error"
}))]
pub struct ErrorBody<'a> {
    /// The HTTP reason phrase of the status.
    pub error: &'a str,
    /// What went wrong and why, naming the field for validation errors. An internal error
    /// carries only the request id to quote.
    pub detail: &'a str,
    /// A stable machine-readable code, such as `validation_error` or `not_found`.
    pub code: &'a str,
}

impl ApiError {
    /// An error with a status, a machine code and a human detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), cause: None }
    }

    /// 400 for a field that failed validation; the detail names the field.
    pub fn invalid(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", format!("{field}: {why}"))
    }

    /// 404 for a missing resource.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} was not found"))
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 500 whose cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            detail: String::new(),
            cause: Some(cause.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut detail = self.detail;
        if let Some(cause) = &self.cause {
            let id = request_id::current().unwrap_or_default();
            tracing::error!(request.id = %id, error = %cause, "request failed");
            detail = format!("an internal error occurred; quote request id {id} when reporting it");
        }
        let reason = self.status.canonical_reason().unwrap_or("Error");
        let body = ErrorBody { error: reason, detail: &detail, code: self.code };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"certifyclouds\""),
            );
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        // Text Postgres cannot store (a NUL character, in text or in JSON) is the caller's
        // input, not our fault: a 400 rather than a 500, even where no validation caught it.
        if let sqlx::Error::Database(db) = &err
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return Self::invalid("body", "text values must not contain NUL characters");
        }
        Self::internal(format!("database: {err}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "validation_error"),
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::BytesRejection(_)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                return Self::too_large();
            }
            _ => (StatusCode::BAD_REQUEST, "bad_request"),
        };
        Self::new(status, code, rejection.body_text())
    }
}

impl ApiError {
    /// 413 for a body over the size limit.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the API accepts",
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text())
    }
}

/// The answer for a path no route matches.
pub async fn unknown_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_route", "no such endpoint")
}
