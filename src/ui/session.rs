//! Signing in to the dashboard: `/ui/login` takes an API token and sets an HttpOnly,
//! SameSite=Strict session cookie; every page looks the session up (a revoked token ends it);
//! every form posts back the session's CSRF token; `/ui/logout` ends the session.

use std::time::Duration;

use chrono::Utc;
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::extract::{PageResult, Posted};
use super::layout;
use crate::api::ApiState;
use crate::domain::tokens;
use crate::domain::users::Caller;
use crate::store;

/// The session cookie's name.
pub const COOKIE: &str = "wh_session";
/// Every session id starts with this.
const SESSION_PREFIX: &str = "whs_";
/// How long a session lasts without signing in again.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A signed-in person.
pub struct Session {
    /// Who they are, as the API would see their token.
    pub caller: Caller,
    /// The token every form must post back.
    pub csrf: String,
    /// The event stream's last number when this request began: the page it renders shows
    /// every change up to it, and its live view resumes after it.
    pub stream_seq: i64,
    hash: Vec<u8>,
}

impl Session {
    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_ok(&self, presented: &str) -> bool {
        // Compared in full whatever the first difference, so the time says nothing.
        presented.len() == self.csrf.len()
            && presented
                .bytes()
                .zip(self.csrf.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn cookie_value(req: &Request) -> Option<String> {
    let cookies = req.headers().get_all(header::COOKIE);
    cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The request's session, if it carries a live one.
pub async fn current(req: &Request, state: &ApiState) -> anyhow::Result<Option<Session>> {
    let Some(secret) = cookie_value(req).filter(|s| s.starts_with(SESSION_PREFIX)) else {
        return Ok(None);
    };
    let hash = tokens::hash(&secret);
    let mut conn = state.pool.acquire().await?;
    Ok(store::sessions::find(&mut conn, &hash)
        .await?
        .map(|found| Session {
            caller: found.caller,
            csrf: found.csrf,
            stream_seq: found.stream_seq,
            hash,
        }))
}

/// The session, or the response that sends the person to sign in (pages take the
/// [`Session`] extractor, `ui::extract`, which calls this).
pub(super) async fn required(req: &Request, state: &ApiState) -> Result<Session, Response> {
    match current(req, state).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Redirect::see_other("/ui/login").into_response()),
        Err(e) => Err(layout::failure(&e)),
    }
}

/// Refuse a state-changing request whose form does not carry the session's CSRF token
/// (forms arrive through `ui::extract::Posted`, which calls this).
pub(super) fn check_csrf(session: &Session, presented: Option<&str>) -> Result<(), Response> {
    match presented {
        Some(p) if session.csrf_ok(p) => Ok(()),
        _ => Err(layout::error_page(
            StatusCode::FORBIDDEN,
            "This form expired or did not come from this dashboard (CSRF check failed). \
             Reload the page and try again.",
        )),
    }
}

#[handler]
pub async fn login_page(req: &Request, state: Data<&ApiState>) -> Response {
    if let Ok(Some(_)) = current(req, &state).await {
        return Redirect::see_other("/ui").into_response();
    }
    layout::login(None, StatusCode::OK)
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

#[handler]
pub async fn login(state: Data<&ApiState>, Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    let refused = || {
        layout::login(
            Some("That token is not valid: unknown, mistyped or revoked."),
            StatusCode::UNAUTHORIZED,
        )
    };
    if !tokens::looks_like_token(token) {
        return refused();
    }
    let signed_in = async {
        let mut conn = state.pool.acquire().await?;
        let Some(caller) = store::tokens::authenticate(&mut conn, &tokens::hash(token)).await?
        else {
            return anyhow::Ok(None);
        };
        let Some(token_id) = caller.token_id else {
            return Ok(None);
        };
        let (secret, hash) = tokens::mint_secret(SESSION_PREFIX);
        let (csrf, _) = tokens::mint_secret("");
        let expires = Utc::now() + chrono::Duration::from_std(LIFETIME)?;
        store::sessions::create(&mut *conn, &hash, token_id, &csrf, expires).await?;
        Ok(Some(secret))
    }
    .await;
    match signed_in {
        Ok(Some(secret)) => {
            let cookie = format!(
                "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                LIFETIME.as_secs()
            );
            Redirect::see_other("/ui")
                .with_header(header::SET_COOKIE, cookie)
                .into_response()
        }
        Ok(None) => refused(),
        Err(e) => layout::failure(&e),
    }
}

#[handler]
pub async fn logout(Posted { session, .. }: Posted, state: Data<&ApiState>) -> PageResult {
    store::sessions::delete(&state.pool, &session.hash).await?;
    let expired = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(Redirect::see_other("/ui/login")
        .with_header(header::SET_COOKIE, expired)
        .into_response())
}
