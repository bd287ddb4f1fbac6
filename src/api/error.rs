//! Errors as RFC 9457 `application/problem+json`: one `ApiError` with a variant per status, so
//! Swagger shows every error, and the conversion of poem's own errors (unknown routes, bad JSON,
//! wrong content types) into the same shape.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::work::WorkError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

tokio::task_local! {
    /// The id of the request being served, set by the HTTP middleware around each request.
    pub static REQUEST_ID: String;
}

/// The current request's id, or empty outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// An RFC 9457 problem details object.
#[derive(Object, Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` means the status says it all.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type (the HTTP reason phrase for `about:blank`).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for a person.
    pub detail: String,
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`.
    pub code: String,
    /// The request id, also sent as `x-request-id` and written to the logs.
    pub request_id: String,
    /// The quota that refused the request (`code` = `quota_exhausted`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// The plan bound that refused the request (`code` = `plan_limit`), e.g. `max_channels`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<String>,
    /// Each field or parameter at fault (`code` = `validation_failed` or `invalid_request`):
    /// an RFC 9457 extension member, so a client can point at the input to fix.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One field or parameter at fault in a request.
#[derive(Object, Debug, Clone, serde::Serialize)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/subscription/keys/auth`; `""` is
    /// the whole body.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The query, path or header parameter at fault, e.g. `limit`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// What is wrong with it, naming it, for a person.
    pub detail: String,
}

impl FieldError {
    /// A body field at `pointer`; the detail is prefixed with the pointer.
    pub fn at_pointer(pointer: &str, detail: impl Into<String>) -> Self {
        let shown = if pointer.is_empty() {
            "the body"
        } else {
            pointer
        };
        Self {
            pointer: Some(pointer.to_string()),
            parameter: None,
            detail: format!("`{shown}` {}", detail.into()),
        }
    }

    /// A query, path or header parameter.
    pub fn at_parameter(name: &str, detail: impl Into<String>) -> Self {
        Self {
            pointer: None,
            parameter: Some(name.to_string()),
            detail: detail.into(),
        }
    }
}

impl Problem {
    /// A problem for `status` with a detail message.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.into(),
            request_id: current_request_id(),
            quota: None,
            bound: None,
            errors: None,
        }
    }

    /// The same problem listing the fields or parameters at fault.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = (!errors.is_empty()).then_some(errors);
        self
    }

    /// The problem as a complete HTTP response.
    pub fn into_http_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Every error an API operation can answer with.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed (JSON that does not parse, a parameter of the wrong type);
    /// `errors` names the parameter.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid bearer token was given.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The caller's role does not allow this operation.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource, or it is not the caller's.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with existing data (e.g. a duplicate).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The request body or a value in it is larger than allowed.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The request is well-formed but its values are not acceptable: a body that does not match
    /// the schema (a wrong type, a missing field) or a value the rules refuse; `errors` names
    /// each field (JSON pointer) or parameter.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// A daily quota is used up (`quota` names it) or the token sent requests too fast;
    /// `Retry-After` says how many seconds to wait.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side; the detail is in the logs under the request id.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency (the database) is unavailable; try again later.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    /// 400: the request is malformed (a header or parameter that cannot be used).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(Json(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            detail,
        )))
    }

    /// 403: the caller's role does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(Json(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            detail,
        )))
    }

    /// 404 for `what` (also used for objects that exist but are not the caller's).
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(Json(Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )))
    }

    /// 409 with a detail.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(Json(Problem::new(StatusCode::CONFLICT, "conflict", detail)))
    }

    /// 413: a value is larger than allowed.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::PayloadTooLarge(Json(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            detail,
        )))
    }

    /// 422: the values are not acceptable.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::Unprocessable(Json(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )))
    }

    /// 422 naming the field or parameter at fault in the `errors` member too.
    pub fn unprocessable_at(detail: impl Into<String>, at: FieldError) -> Self {
        Self::Unprocessable(Json(
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
            .with_errors(vec![at]),
        ))
    }

    /// 422: the query or path parameter `name` is not acceptable.
    pub fn invalid_parameter(name: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::unprocessable_at(detail.clone(), FieldError::at_parameter(name, detail))
    }

    /// A use case's error for an act whose input came from query parameters: an invalid
    /// `field` is named as the parameter `parameter` rather than as a body field.
    pub fn from_parameters(error: WorkError, parameter: &str) -> Self {
        match error {
            WorkError::Invalid {
                field: Some(_),
                detail,
            } => Self::invalid_parameter(parameter, detail),
            other => Self::from(other),
        }
    }

    /// Map a database error: unique violations become 409 (with `conflict_detail`), an
    /// unreachable database 503, anything else 500.
    pub fn from_db(error: sqlx::Error, conflict_detail: &str) -> Self {
        if let Some(db) = error.as_database_error()
            && db.is_unique_violation()
        {
            return Self::conflict(conflict_detail);
        }
        Self::from(anyhow::Error::from(error))
    }
}

impl From<WorkError> for ApiError {
    fn from(error: WorkError) -> Self {
        match error {
            WorkError::Invalid {
                field: Some(field),
                detail,
            } => {
                // The use cases name top-level body fields; a handler whose fields are query
                // parameters says so with `ApiError::from_parameters`.
                let at = FieldError {
                    pointer: Some(format!("/{field}")),
                    parameter: None,
                    detail: detail.clone(),
                };
                Self::unprocessable_at(detail, at)
            }
            WorkError::Invalid { detail, .. } => Self::unprocessable(detail),
            WorkError::TooLarge(detail) => Self::too_large(detail),
            WorkError::Forbidden(detail) => Self::forbidden(detail),
            WorkError::NotFound(what) => Self::not_found(what),
            WorkError::Conflict(detail) => Self::conflict(detail),
            WorkError::Bound {
                bound,
                value,
                detail,
                ..
            } => {
                let status = match value {
                    true => StatusCode::UNPROCESSABLE_ENTITY,
                    false => StatusCode::FORBIDDEN,
                };
                let mut problem = Problem::new(status, "plan_limit", detail);
                problem.bound = Some(bound.to_string());
                match value {
                    true => Self::Unprocessable(Json(problem)),
                    false => Self::Forbidden(Json(problem)),
                }
            }
            WorkError::QuotaSpent {
                action,
                usage,
                detail,
                ..
            } => {
                let wait =
                    crate::domain::quotas::ceil_secs(usage.resets_at - chrono::Utc::now()).max(1);
                let mut problem =
                    Problem::new(StatusCode::TOO_MANY_REQUESTS, "quota_exhausted", detail);
                problem.quota = Some(action);
                Self::TooManyRequests(Json(problem), wait)
            }
            WorkError::Internal(error) => Self::from(error),
        }
    }
}

/// Whether an error chain says the database could not be reached (as opposed to a bug).
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<sqlx::Error>().is_some_and(|e| {
            matches!(
                e,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        })
    })
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        if is_unavailable(&error) {
            tracing::warn!(error = format!("{error:#}"), "database unavailable");
            return Self::Unavailable(Json(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; try again shortly",
            )));
        }
        // Logged once here, where it is handled; the client sees only the request id.
        tracing::error!(error = format!("{error:#}"), "request failed");
        Self::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the logs have details under this request id",
        )))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::from(anyhow::Error::from(error))
    }
}

/// Turn an error raised by poem or poem-openapi (routing, parsing, auth) into problem+json;
/// `route` is the matched path template (`/v1/users/{id}`), to name a path parameter.
pub fn problem_from_poem(error: poem::Error, route: Option<&str>) -> Response {
    // Our own `ApiError`s arrive as finished problem+json responses.
    if error.is_from_response() {
        return error.into_response();
    }
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(error = %error, %status, "request failed");
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this resource".into(),
        StatusCode::UNAUTHORIZED => {
            "a valid bearer token is required (Authorization: Bearer wh_...)".into()
        }
        s if s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE => {
            "internal error; the logs have details under this request id".into()
        }
        _ => error.to_string(),
    };
    match parameter_error(&error, route) {
        Some(field) => Problem::new(status, code, field.detail.clone()).with_errors(vec![field]),
        None => Problem::new(status, code, detail),
    }
    .into_http_response()
}

/// The parameter a poem-openapi parse error names, for the problem's `errors` member.
fn parameter_error(error: &poem::Error, route: Option<&str>) -> Option<FieldError> {
    use poem_openapi::error::{ParseParamError, ParsePathError};
    if let Some(e) = error.downcast_ref::<ParseParamError>() {
        let detail = format!("parameter `{}`: {}", e.name, e.reason);
        return Some(FieldError::at_parameter(e.name, detail));
    }
    let e = error.downcast_ref::<ParsePathError>()?;
    // poem-openapi routes path parameters as `param0`, `param1`, …; the spec and the client
    // know them by the template's names.
    let name = e
        .name
        .strip_prefix("param")
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| path_parameters(route?).nth(i))
        .unwrap_or(e.name);
    let detail = format!("path parameter `{name}`: {}", e.reason);
    Some(FieldError::at_parameter(name, detail))
}

/// The names of a path template's parameters, in order.
fn path_parameters(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_http_response()
    }
}
