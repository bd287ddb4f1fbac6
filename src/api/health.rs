//! `GET /healthz` (the process is alive) and `GET /readyz` (it can do its work).

use std::time::Duration;

use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::ApiState;
use super::error::current_request_id;
use crate::store;

#[derive(Tags)]
enum HealthTags {
    /// Liveness and readiness probes for systemd, load balancers and orchestrators.
    Health,
}

/// Probes.
pub struct HealthApi;

/// Liveness answer.
#[derive(Object)]
struct Alive {
    /// Always `ok`.
    status: String,
}

/// One readiness check.
#[derive(Object, Debug)]
pub struct Check {
    /// `database`, `migrations`, or a component such as `http`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

/// Readiness report; when not ready it is an RFC 9457 problem with the checks attached.
#[derive(Object)]
struct Readiness {
    /// `about:blank` when not ready.
    #[oai(rename = "type", skip_serializing_if_is_none)]
    kind: Option<String>,
    /// `ready`, or `Service Unavailable`.
    title: String,
    /// 200 or 503.
    status: u16,
    /// Which checks failed, for a person.
    #[oai(skip_serializing_if_is_none)]
    detail: Option<String>,
    /// `not_ready` when not ready.
    #[oai(skip_serializing_if_is_none)]
    code: Option<String>,
    /// Request id.
    request_id: String,
    /// Every check with its outcome.
    checks: Vec<Check>,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Every check passed.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// At least one check failed.
    #[oai(status = 503, content_type = "application/problem+json")]
    NotReady(Json<Readiness>),
}

/// A readiness check must answer quickly even while PostgreSQL hangs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[OpenApi(tag = "HealthTags::Health")]
impl HealthApi {
    /// Liveness: the process is up and serving HTTP.
    #[oai(path = "/healthz", method = "get", operation_id = "liveness_get")]
    async fn healthz(&self) -> Json<Alive> {
        Json(Alive {
            status: "ok".into(),
        })
    }

    /// Readiness: the database is reachable, migrations are applied and every component
    /// (HTTP, workers) is running. 503 names the failing check.
    #[oai(path = "/readyz", method = "get", operation_id = "readiness_get")]
    async fn readyz(&self, state: poem::web::Data<&ApiState>) -> ReadyResponse {
        let checks = readiness_checks(state.0).await;
        let failing: Vec<&str> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        if failing.is_empty() {
            ReadyResponse::Ready(Json(Readiness {
                kind: None,
                title: "ready".into(),
                status: 200,
                detail: None,
                code: None,
                request_id: current_request_id(),
                checks,
            }))
        } else {
            let detail = format!("not ready: {} failing", failing.join(", "));
            ReadyResponse::NotReady(Json(Readiness {
                kind: Some("about:blank".into()),
                title: StatusCode::SERVICE_UNAVAILABLE
                    .canonical_reason()
                    .unwrap_or_default()
                    .into(),
                status: 503,
                detail: Some(detail),
                code: Some("not_ready".into()),
                request_id: current_request_id(),
                checks,
            }))
        }
    }
}

async fn readiness_checks(state: &ApiState) -> Vec<Check> {
    let check = |name: &str, result: Result<(), String>| Check {
        name: name.into(),
        ok: result.is_ok(),
        detail: result.err(),
    };
    let database =
        tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool))
            .await
            .map_err(|_| format!("no answer within {CHECK_TIMEOUT:?}"))
            .and_then(|r| r.map(drop).map_err(|e| e.to_string()));
    let migrations = if database.is_ok() {
        match tokio::time::timeout(CHECK_TIMEOUT, store::migrations_applied(&state.pool)).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err("migrations are pending".to_string()),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    } else {
        Err("database unreachable".to_string())
    };
    let mut checks = vec![check("database", database), check("migrations", migrations)];
    checks.extend(
        state
            .health
            .snapshot()
            .into_iter()
            .map(|(name, state)| check(name, state)),
    );
    checks
}
