//! Bearer-token authentication: the security scheme Swagger's *Authorize* button fills in, and
//! the stream ticket browsers use for streams. `/v1/ws`, outside the spec, runs the same checks
//! ([`caller_of_token`], [`caller_of_ticket`]).

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, is_unavailable};
use super::limits;
use crate::domain::tokens;
use crate::domain::users::Caller;
use crate::domain::users::Role;
use crate::store;

/// A caller authenticated by an API token (`Authorization: Bearer wh_...`).
#[derive(SecurityScheme)]
#[oai(
    ty = "bearer",
    bearer_format = "wh_<43 characters>",
    checker = "check_bearer"
)]
pub struct BearerAuth(pub Caller);

impl BearerAuth {
    /// The caller's user id.
    pub fn user_id(&self) -> Uuid {
        self.0.user_id
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }

    /// Refuse with 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this operation needs the admin role"))
        }
    }

    /// The owner filter for queries: `None` (everything) for admins, else the caller's id.
    pub fn owner_filter(&self) -> Option<Uuid> {
        (!self.is_admin()).then_some(self.0.user_id)
    }

    /// Whether the caller may see resources of `user_id`.
    pub fn can_see(&self, user_id: Uuid) -> bool {
        self.is_admin() || self.0.user_id == user_id
    }
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    caller_of_token(req, &bearer.token).await
}

/// The caller an API token (`wh_...`) names, within their rate limit; a 401, 429 or 503
/// otherwise. Served from the token cache ([`super::token_cache`]) when it can.
pub async fn caller_of_token(req: &Request, token: &str) -> poem::Result<Caller> {
    let unauthorized = || {
        poem::Error::from_string(
            "the bearer token is not valid (unknown, malformed or revoked)",
            StatusCode::UNAUTHORIZED,
        )
    };
    if !tokens::looks_like_token(token) {
        return Err(unauthorized());
    }
    let state = req
        .data::<ApiState>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    let hash = tokens::hash(token);
    // A cached caller costs no query; a miss looks the token up (noting its use) and caches
    // it, unless the cache was cleared meanwhile.
    let found = async {
        let generation = state.tokens.generation();
        if let Some(caller) = state.tokens.get(&hash) {
            return anyhow::Ok((None, Some(caller)));
        }
        let mut conn = state.pool.acquire().await?;
        let caller = store::tokens::authenticate(&mut conn, &hash).await?;
        if let Some(caller) = &caller {
            state.tokens.insert(generation, hash, caller.clone());
        }
        anyhow::Ok((Some(conn), caller))
    }
    .await;
    match found {
        Ok((conn, Some(caller))) => {
            // Admins have no rate limit: a cached admin needs no connection at all.
            if caller.role == Role::Admin {
                return Ok(caller);
            }
            let mut conn = match conn {
                Some(conn) => conn,
                None => (state.pool.acquire().await)
                    .map_err(|e| database_error(e.into(), "authenticating a token"))?,
            };
            limits::check_rate(req, state, &mut conn, &caller).await?;
            Ok(caller)
        }
        Ok((_, None)) => Err(unauthorized()),
        Err(e) => Err(database_error(e, "authenticating a token")),
    }
}

/// A 503 when the database is unavailable, else a 500 whose cause is logged once here.
fn database_error(e: anyhow::Error, what: &str) -> poem::Error {
    if is_unavailable(&e) {
        return poem::Error::from_string(
            "the database is unavailable; try again shortly",
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    tracing::error!(error = format!("{e:#}"), "{what} failed");
    poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A browser's stream ticket (`?ticket=wht_...`, from `POST /v1/events/tickets`): EventSource
/// cannot send an `Authorization` header. Opens event streams only.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "ticket",
    key_in = "query",
    checker = "check_ticket"
)]
pub struct TicketAuth(pub Caller);

/// Who may open an event stream: a bearer token, or a stream ticket.
#[derive(SecurityScheme)]
pub enum StreamAuth {
    /// `Authorization: Bearer wh_...`.
    Bearer(BearerAuth),
    /// `?ticket=wht_...`.
    Ticket(TicketAuth),
}

impl StreamAuth {
    /// The caller, however they authenticated.
    pub fn caller(&self) -> &Caller {
        match self {
            StreamAuth::Bearer(b) => &b.0,
            StreamAuth::Ticket(t) => &t.0,
        }
    }
}

async fn check_ticket(req: &Request, key: poem_openapi::auth::ApiKey) -> poem::Result<Caller> {
    caller_of_ticket(req, &key.key).await
}

/// The caller a live stream ticket (`wht_...`) names; a 401 or 503 otherwise.
pub async fn caller_of_ticket(req: &Request, ticket: &str) -> poem::Result<Caller> {
    let unauthorized = || {
        poem::Error::from_string(
            "send a bearer token (Authorization: Bearer wh_...) or a live stream ticket \
             (?ticket=wht_..., from POST /v1/events/tickets); this one is unknown, expired or \
             its token was revoked",
            StatusCode::UNAUTHORIZED,
        )
    };
    if !tokens::looks_like_ticket(ticket) {
        return Err(unauthorized());
    }
    let state = req
        .data::<ApiState>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    let found = async {
        let mut conn = state.pool.acquire().await?;
        store::stream::redeem_ticket(&mut conn, &tokens::hash(ticket)).await
    }
    .await;
    match found {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(database_error(e, "checking a stream ticket")),
    }
}
