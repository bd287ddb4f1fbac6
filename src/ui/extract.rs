//! What every dashboard handler takes and gives: the signed-in [`Session`] (a person without
//! one is sent to sign in), a [`Posted`] form whose CSRF token was checked before the handler
//! runs, and [`PageError`], the page an error or a refusal becomes, so handlers use `?`.

use poem::http::StatusCode;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::layout;
use super::session::{self, Session};
use crate::api::ApiState;
use crate::work::WorkError;

impl<'a> FromRequest<'a> for Session {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let Some(state) = req.data::<ApiState>() else {
            let missing = anyhow::anyhow!("the dashboard is served without the API state");
            return Err(PageError::from(missing).into());
        };
        session::required(req, state)
            .await
            .map_err(poem::Error::from_response)
    }
}

/// A form without fields of its own (only the CSRF token).
#[derive(Deserialize, Default)]
pub struct NoFields {}

/// A form posted by a signed-in person: the session first (else to sign in), then the CSRF
/// token (else 403), then the form's own fields (else 422).
pub struct Posted<F = NoFields> {
    /// Who posted it.
    pub session: Session,
    /// The form's fields, the CSRF token aside.
    pub form: F,
}

impl<'a, F: DeserializeOwned> FromRequest<'a> for Posted<F> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let session = Session::from_request(req, body).await?;
        let bytes = Vec::<u8>::from_request(req, body).await?;
        let presented = url::form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value.into_owned());
        session::check_csrf(&session, presented.as_deref()).map_err(poem::Error::from_response)?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            let page = layout::error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("The form could not be read: {e}."),
            );
            poem::Error::from_response(page)
        })?;
        Ok(Self { session, form })
    }
}

/// The page a handler stops with: a server failure (logged, shown without details), a use
/// case's refusal with the status the API would answer, or any page made earlier.
pub struct PageError(Response);

/// What a page handler returns.
pub type PageResult = Result<Response, PageError>;

impl PageError {
    /// A page saying `message` with `status`.
    pub fn new(status: StatusCode, message: &str) -> Self {
        Self(layout::error_page(status, message))
    }

    /// 404, naming what was looked for (`job 0190…`).
    pub fn not_found(what: std::fmt::Arguments<'_>) -> Self {
        Self::new(StatusCode::NOT_FOUND, &format!("{what} not found"))
    }

    /// 422, saying what is wrong with the request.
    pub fn invalid(message: &str) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl From<anyhow::Error> for PageError {
    fn from(error: anyhow::Error) -> Self {
        Self(layout::failure(&error))
    }
}

impl From<sqlx::Error> for PageError {
    fn from(error: sqlx::Error) -> Self {
        Self::from(anyhow::Error::from(error))
    }
}

impl From<WorkError> for PageError {
    fn from(error: WorkError) -> Self {
        let status = match &error {
            WorkError::Invalid { .. } | WorkError::Bound { value: true, .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            WorkError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WorkError::Forbidden(_) | WorkError::Bound { .. } => StatusCode::FORBIDDEN,
            WorkError::NotFound(_) => StatusCode::NOT_FOUND,
            WorkError::Conflict(_) => StatusCode::CONFLICT,
            WorkError::QuotaSpent { .. } => StatusCode::TOO_MANY_REQUESTS,
            WorkError::Internal(e) => return Self(layout::failure(e)),
        };
        Self::new(status, &error.to_string())
    }
}

impl From<PageError> for poem::Error {
    fn from(page: PageError) -> Self {
        poem::Error::from_response(page.0)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0
    }
}
