//! API tokens: minting one for a user (admins for anyone, users for themselves, within the token
//! owner's plan bound `max_tokens`; admins' own tokens are unbounded) and revoking one.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Work, WorkError, WorkResult, caller_of};
use crate::domain::tokens::{self, MintedToken};
use crate::store;
use crate::store::bounds::Held;
use crate::store::tokens::Token;

/// Mint a token named `name` for `user_id`, on `conn` (a transaction, for the bound's lock).
/// The secret is in the returned [`MintedToken`], shown once.
pub async fn create(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    user_id: Uuid,
    name: &str,
) -> WorkResult<(Token, MintedToken)> {
    let name = name.trim();
    if name.is_empty() {
        return Err(WorkError::invalid("name", "name must not be blank"));
    }
    if name.chars().count() > 200 {
        return Err(WorkError::invalid(
            "name",
            "name must be at most 200 characters",
        ));
    }
    if !caller.is_admin() && caller.user_id != user_id {
        return Err(WorkError::not_found(format_args!("user {user_id}")));
    }
    if store::users::find_user(conn, user_id).await?.is_none() {
        return Err(WorkError::not_found(format_args!("user {user_id}")));
    }
    // The bound is the holder's: an admin minting for a user stays within the user's plan.
    let holder = caller_of(conn, user_id).await?;
    work.check_bound(conn, &holder, Held::Tokens).await?;
    let minted = tokens::mint();
    let token = store::tokens::insert_token(conn, user_id, name, &minted).await?;
    Ok((token, minted))
}

/// Revoke token `id`: admins any, users their own. Requests with it are refused from now on;
/// revoking a revoked token keeps its first revocation time. Returns the token as revoked.
pub async fn revoke(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> WorkResult<Token> {
    let owner = caller.owner_filter();
    if store::tokens::find_token(conn, id, owner).await?.is_none() {
        return Err(WorkError::not_found(format_args!("token {id}")));
    }
    store::tokens::revoke_token(conn, id).await?;
    store::tokens::find_token(conn, id, owner)
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("token {id}")))
}
