//! The OAuth2 access token for FCM: minted from the service account with the JWT bearer grant
//! (RFC 7523) and cached until shortly before it expires.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use super::{FcmError, transport, with_code};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A cached token is retired this long before Google says it expires, so a send that starts just
/// before the expiry (plus clock skew and a slow request) never arrives with a dead token.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// One service account's access token, minted on demand.
pub(super) struct TokenSource {
    http: reqwest::Client,
    key: EncodingKey,
    client_email: String,
    token_uri: String,
    // A tokio Mutex, held across the grant: concurrent sends with no valid token wait for the one
    // grant in flight instead of each minting their own.
    cached: tokio::sync::Mutex<Option<AccessToken>>,
}

struct AccessToken {
    value: String,
    retire_at: Instant,
}

impl TokenSource {
    /// A source for this account; `token_uri` is both where the grant goes and its `aud`.
    pub(super) fn new(
        http: reqwest::Client,
        key: EncodingKey,
        client_email: String,
        token_uri: String,
    ) -> Self {
        Self {
            http,
            key,
            client_email,
            token_uri,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The token endpoint in use.
    pub(super) fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The cached access token, or a new one when there is none or it is about to expire.
    pub(super) async fn get(&self) -> Result<String, FcmError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.retire_at) {
            return Ok(token.value.clone());
        }
        let minted = self.mint().await?;
        let value = minted.value.clone();
        *cached = Some(minted);
        Ok(value)
    }

    /// Drops `stale` from the cache, unless another send has already replaced it.
    pub(super) async fn forget(&self, stale: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == stale) {
            *cached = None;
        }
    }

    /// Exchanges a signed assertion for an access token at the token endpoint.
    async fn mint(&self) -> Result<AccessToken, FcmError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| FcmError::Token(format!("signing the grant: {e}")))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", GRANT_TYPE)
            .append_pair("assertion", &assertion)
            .finish();
        // Measured from before the request, so a slow answer only shortens the token's use.
        let asked_at = Instant::now();
        let response = self
            .http
            .post(&self.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| transport("the token endpoint", &e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport("the token endpoint", &e))?;
        if !status.is_success() {
            // The OAuth error code only: its description is the server's words, not stored.
            let code = serde_json::from_slice::<GrantError>(&bytes).ok();
            let why = with_code(status, code.as_ref().map(|e| e.error.as_str()));
            // Google being down or throttling is not a verdict on the grant: try again later.
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                return Err(FcmError::Transport(format!(
                    "the token endpoint answered {why}"
                )));
            }
            return Err(FcmError::Token(format!("the grant was refused: {why}")));
        }
        let granted: Granted = serde_json::from_slice(&bytes)
            .map_err(|e| FcmError::Token(format!("the token endpoint's answer: {e}")))?;
        if !granted.token_type.eq_ignore_ascii_case("bearer") || granted.access_token.is_empty() {
            return Err(FcmError::Token(format!(
                "the token endpoint issued a `{}` token, not a bearer token",
                granted.token_type
            )));
        }
        let lifetime = Duration::from_secs(granted.expires_in).saturating_sub(EXPIRY_MARGIN);
        Ok(AccessToken {
            value: granted.access_token,
            retire_at: asked_at + lifetime,
        })
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: u64,
    #[serde(default = "bearer")]
    token_type: String,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

#[derive(Deserialize)]
struct GrantError {
    error: String,
}
