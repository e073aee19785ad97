//! Errors as RFC 9457 problem details (`application/problem+json`): a client reads
//! what went wrong, and which field or parameter, without parsing prose.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// One problem: the RFC's members, plus the offending parameter and what would have
/// been accepted where that helps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (relative, under `/problems/`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A short summary of the kind.
    pub title: &'static str,
    /// The HTTP status, repeated for clients that lose it.
    pub status: u16,
    /// What happened in this request.
    pub detail: String,
    /// The query parameter or field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The fields the dataset's current schema knows, when a field was at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_fields: Option<Vec<String>>,
}

impl Problem {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            known_fields: None,
        }
    }

    /// 400: a parameter that cannot be read, or does not fit its field's type.
    pub fn bad_request(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "/problems/bad-request",
                "Bad request",
                detail,
            )
        }
    }

    /// 400: a field the dataset's schema does not have, with the ones it has.
    pub fn unknown_field(field: &str, known: Vec<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            known_fields: Some(known),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "/problems/unknown-field",
                "Unknown field",
                format!("the dataset has no field {field:?}"),
            )
        }
    }

    /// 401: no credentials, or ones that name no tenant.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "/problems/unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: credentials of another tenant.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "/problems/forbidden",
            "Forbidden",
            detail,
        )
    }

    /// 404: no such dataset, record or object for this tenant.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "/problems/not-found",
            "Not found",
            detail,
        )
    }

    /// 413: a body past the stated limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "/problems/too-large",
            "Body too large",
            format!("the body is limited to {limit} bytes: use POST …/uploads for larger files"),
        )
    }

    /// 503: the database or S3 did not answer; the request may be retried.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "/problems/unavailable",
            "Service unavailable",
            detail,
        )
    }
}

impl From<tokio_postgres::Error> for Problem {
    fn from(e: tokio_postgres::Error) -> Self {
        tracing::warn!(error = %crate::aws::describe(&e), "Records API query failed.");
        Problem::unavailable(format!("database: {}", crate::aws::describe(&e)))
    }
}

impl From<crate::db::DbError> for Problem {
    fn from(e: crate::db::DbError) -> Self {
        tracing::warn!(error = %e, "Records API has no database connection.");
        Problem::unavailable(format!("database: {e}"))
    }
}

impl From<crate::registry::RegistryError> for Problem {
    fn from(e: crate::registry::RegistryError) -> Self {
        Problem::unavailable(format!("schema registry: {e}"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_else(|e| {
            Value::String(format!("problem not serialisable: {e}")).to_string()
        });
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
