//! `/v1/users/{id}/tokens` and `/v1/tokens/{id}`: API tokens, shown once, revocable.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use crate::store;
use crate::work;

#[derive(Tags)]
enum TokenTags {
    /// Bearer tokens for the API.
    Tokens,
}

/// Tokens.
pub struct TokensApi;

/// A token as listed: never the secret.
#[derive(Object)]
struct TokenOut {
    /// Id.
    id: Uuid,
    /// Owner.
    user_id: Uuid,
    /// What it is for.
    name: String,
    /// First characters of the token, to recognise it.
    prefix: String,
    /// Creation time.
    created_at: DateTime<Utc>,
    /// Last time it authenticated a request (to the minute).
    #[oai(skip_serializing_if_is_none)]
    last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    #[oai(skip_serializing_if_is_none)]
    revoked_at: Option<DateTime<Utc>>,
}

impl From<store::tokens::Token> for TokenOut {
    fn from(t: store::tokens::Token) -> Self {
        Self {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token: the only time the secret is shown.
#[derive(Object)]
struct NewTokenOut {
    /// Id, for revoking it later.
    id: Uuid,
    /// Owner.
    user_id: Uuid,
    /// What it is for.
    name: String,
    /// The bearer token. Store it now: it cannot be shown again.
    token: String,
    /// Creation time.
    created_at: DateTime<Utc>,
}

/// What to call the new token.
#[derive(Object)]
struct CreateToken {
    /// What the token is for, 1 to 100 characters.
    #[oai(validator(min_length = 1, max_length = 100))]
    name: String,
}

#[derive(ApiResponse)]
enum TokenCreated {
    /// The token was created; its secret is in `token`.
    #[oai(status = 201)]
    Created(Json<NewTokenOut>),
}

#[derive(ApiResponse)]
enum Revoked {
    /// The token is revoked (or already was).
    #[oai(status = 204)]
    Revoked,
}

#[OpenApi(prefix_path = "/v1", tag = "TokenTags::Tokens")]
impl TokensApi {
    /// Create a token for a user: admins for anyone, users for themselves.
    #[oai(
        path = "/users/:id/tokens",
        method = "post",
        operation_id = "tokens_create"
    )]
    async fn create_token(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
        body: Json<CreateToken>,
    ) -> Result<TokenCreated, ApiError> {
        let mut tx = state.pool.begin().await?;
        let (token, minted) =
            work::tokens::create(&state.work, &mut tx, &auth.0, id.0, &body.0.name).await?;
        tx.commit().await?;
        Ok(TokenCreated::Created(Json(NewTokenOut {
            id: token.id,
            user_id: token.user_id,
            name: token.name,
            token: minted.secret,
            created_at: token.created_at,
        })))
    }

    /// List a user's tokens (never their secrets), newest first.
    #[oai(
        path = "/users/:id/tokens",
        method = "get",
        operation_id = "tokens_list"
    )]
    async fn list_tokens(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<Vec<TokenOut>>, ApiError> {
        if !auth.can_see(id.0) {
            return Err(ApiError::not_found(format_args!("user {}", id.0)));
        }
        let mut conn = state.pool.acquire().await?;
        let tokens = store::tokens::list_tokens(&mut conn, id.0).await?;
        Ok(Json(tokens.into_iter().map(TokenOut::from).collect()))
    }

    /// Revoke a token. Requests with it are refused with 401 from now on.
    #[oai(
        path = "/tokens/:id",
        method = "delete",
        operation_id = "tokens_revoke"
    )]
    async fn revoke_token(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Revoked, ApiError> {
        let mut conn = state.pool.acquire().await?;
        work::tokens::revoke(&mut conn, &auth.0, id.0).await?;
        // This process refuses it at once; others when the trigger's notice reaches them.
        state.tokens.clear();
        Ok(Revoked::Revoked)
    }
}
