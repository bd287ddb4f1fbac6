//! `GET /metrics`: every metric in the Prometheus text exposition format, outside `/v1` and
//! the OpenAPI document (it is for Prometheus, not for API clients; docs/operations.md
//! describes it). An admin token reads it from anywhere; a request without a token is served
//! only when the connection's peer address is in `metrics.allow_from` (`X-Forwarded-For` is
//! not trusted). A user's token gets 403, a stranger without a token 401, both problem+json.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use poem::http::StatusCode;
use poem::http::header::AUTHORIZATION;
use poem::{Endpoint, Request, Response};

use super::ApiState;
use super::error::{Problem, is_unavailable};
use crate::domain::tokens;
use crate::domain::users::Role;
use crate::store;

/// The media type of the text exposition format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the metrics to admins and to the networks of `metrics.allow_from`.
pub struct MetricsEndpoint {
    allow: Arc<Vec<IpNet>>,
}

impl MetricsEndpoint {
    /// Requests without a token are served from these networks only.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self {
            allow: Arc::new(allow),
        }
    }

    fn allowed(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| {
            // An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d.
            let ip = ip.to_canonical();
            self.allow.iter().any(|net| net.contains(&ip))
        })
    }
}

impl Endpoint for MetricsEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let Some(state) = req.data::<ApiState>() else {
            return Ok(internal());
        };
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
        let token = (req.headers().get(AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
        let refused = match token {
            Some(token) => admin_refusal(state, token).await,
            None if self.allowed(peer) => None,
            None => Some(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "GET /metrics needs an admin bearer token from this address (it is not in \
                 metrics.allow_from)",
            )),
        };
        if let Some(problem) = refused {
            return Ok(problem.into_http_response());
        }
        match state.metrics.render().await {
            Ok(text) => Ok(Response::builder().content_type(EXPOSITION).body(text)),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "rendering the metrics failed");
                Ok(internal())
            }
        }
    }
}

/// Why `token` may not read the metrics, or `None` for an admin's token.
async fn admin_refusal(state: &ApiState, token: &str) -> Option<Problem> {
    let unauthorized = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not valid (unknown, malformed or revoked)",
        )
    };
    if !tokens::looks_like_token(token) {
        return Some(unauthorized());
    }
    let found = async {
        let mut conn = state.pool.acquire().await?;
        store::tokens::authenticate(&mut conn, &tokens::hash(token)).await
    }
    .await;
    match found {
        Ok(Some(caller)) if caller.role == Role::Admin => None,
        Ok(Some(_)) => Some(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "GET /metrics needs the admin role",
        )),
        Ok(None) => Some(unauthorized()),
        Err(e) if is_unavailable(&e) => Some(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; try again shortly",
        )),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "authenticating a metrics scrape failed"
            );
            Some(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; the logs have details under this request id",
            ))
        }
    }
}

fn internal() -> Response {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; the logs have details under this request id",
    )
    .into_http_response()
}
