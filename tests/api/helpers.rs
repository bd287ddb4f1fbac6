//! Shared test helpers: `spawn_app(pool)` builds the real `App` on port 0 and returns a
//! `TestApp` that knows how to call it.

use std::net::SocketAddr;

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workhorse::app::{App, Storage};
use workhorse::config::Config;
use workhorse::domain::tokens;
use workhorse::domain::users::{NewUser, Role};
use workhorse::store;

/// A running app and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub client: Client,
    pub shutdown: CancellationToken,
    pub stopped: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub scraper: std::sync::Arc<workhorse::scrape::job::Scraper>,
    _data_dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The configuration tests run with: port 0, a private data dir, short timeouts.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().expect("valid address");
    config.data_dir = data_dir.to_path_buf();
    config.shutdown.timeout = std::time::Duration::from_secs(5);
    config
}

/// Build and run the real app over `pool`.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

/// Build and run the real app over `pool`, after `configure` adjusted the test configuration.
pub async fn spawn_app_with(pool: PgPool, configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(data_dir.path());
    configure(&mut config);
    let storage = Storage::from_pool(pool.clone())
        .await
        .expect("migrations apply");
    let app = App::with_storage(config, storage)
        .await
        .expect("app builds");
    run(app, pool, data_dir)
}

/// Run an already built app in the background.
pub fn run(app: App, pool: PgPool, data_dir: tempfile::TempDir) -> TestApp {
    let addr = app.local_addr();
    let shutdown = app.shutdown_token();
    let scraper = app.scraper();
    let stopped = tokio::spawn(app.run());
    TestApp {
        addr,
        pool,
        client: Client::new(),
        shutdown,
        stopped,
        scraper,
        _data_dir: data_dir,
    }
}

impl TestApp {
    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request, with a bearer token when given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token)
            .send()
            .await
            .expect("request sent")
    }

    /// POST a JSON body with a token.
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// DELETE with a token.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::DELETE, path, token)
            .send()
            .await
            .expect("request sent")
    }

    /// Create a user with `role` straight in the database and return its id and a token.
    pub async fn user_with_token(&self, name: &str, role: Role) -> (Uuid, String) {
        let mut conn = self.pool.acquire().await.expect("connection");
        let user = store::users::insert_user(
            &mut conn,
            &NewUser::parse(name, None, role, None).expect("valid user"),
        )
        .await
        .expect("user inserted");
        let minted = tokens::mint();
        store::tokens::insert_token(&mut conn, user.id, "test", &minted)
            .await
            .expect("token inserted");
        (user.id, minted.secret)
    }

    /// An admin's token.
    pub async fn admin_token(&self) -> String {
        self.user_with_token("root", Role::Admin).await.1
    }

    /// Event streams the daemon serves now (the `workhorse_stream_clients` gauge).
    pub async fn stream_clients(&self, admin: &str) -> u64 {
        let metrics = self
            .get("/metrics", Some(admin))
            .await
            .text()
            .await
            .expect("metrics");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("workhorse_stream_clients "))
            .and_then(|n| n.trim().parse().ok())
            .expect("the clients gauge")
    }
}

/// Assert `resp` is an RFC 9457 problem with `status` and `code`, carrying the request id of
/// the `x-request-id` header; returns the body.
pub async fn assert_problem(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type was {content_type:?}"
    );
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id header")
        .to_string();
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    assert!(
        body["type"].is_string() && body["title"].is_string(),
        "{body}"
    );
    assert!(
        !body["detail"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
    body
}

/// Build and run the real app without job workers, so jobs stay where a test puts them.
pub async fn spawn_app_without_workers(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| c.jobs.run_workers = false).await
}

impl TestApp {
    /// POST without a body, with a token.
    pub async fn post(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::POST, path, token)
            .send()
            .await
            .expect("request sent")
    }

    /// POST a JSON body with a token and an `Idempotency-Key`.
    pub async fn post_json_with_key(
        &self,
        path: &str,
        token: &str,
        key: &str,
        body: &Value,
    ) -> Response {
        self.request(Method::POST, path, Some(token))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Enqueue a job through `POST /v1/jobs`, asserting 202; returns the job.
    pub async fn enqueue(&self, token: &str, body: Value) -> Value {
        let resp = self.post_json("/v1/jobs", Some(token), &body).await;
        assert_eq!(resp.status().as_u16(), 202, "enqueue status");
        resp.json().await.expect("job JSON")
    }

    /// How many rows the `jobs` table holds.
    pub async fn job_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&self.pool)
            .await
            .expect("jobs counted")
    }
}

/// A web server on a loopback address for a test (a site to scrape, a push service, a model
/// provider); counts the requests it got and stops when dropped.
pub struct Loopback {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Loopback {
    /// Serve `route` on a free port of 127.0.0.1.
    pub async fn start(route: poem::Route) -> Self {
        Self::start_on("127.0.0.1", route).await
    }

    /// Serve `route` on a free port of `ip` (e.g. `127.0.0.2`, which the egress policy tells
    /// apart from 127.0.0.1).
    pub async fn start_on(ip: &str, route: poem::Route) -> Self {
        use poem::listener::{Acceptor, Listener, TcpListener};
        use poem::{Endpoint, EndpointExt};
        use std::sync::atomic::Ordering;

        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let app = route.around(move |ep, req| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                ep.call(req).await
            }
        });
        let acceptor = TcpListener::bind(format!("{ip}:0"))
            .into_acceptor()
            .await
            .expect("binding a loopback server");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { addr, hits, server }
    }

    /// Absolute URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far (counted when they arrive, before they are answered).
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Poll `check` every 50 ms until it holds or `within` has passed; returns whether it held.
pub async fn eventually<F, Fut>(within: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Let users enqueue `echo` through `POST /v1/jobs`: each echo job charges one unit of the
/// `scrape` quota, of which the `free` plan gets `units` a day.
pub fn echo_charges_scrape(config: &mut Config, units: u32) {
    config.jobs.kinds.insert(
        "echo".into(),
        workhorse::config::KindConfig {
            quota: Some("scrape".into()),
            ..workhorse::config::KindConfig::default()
        },
    );
    if let Some(free) = config.plans.get_mut("free") {
        free.quotas.insert("scrape".into(), units);
    }
}

impl TestApp {
    /// Another token for `user_id`, minted straight in the database (no request spent).
    pub async fn another_token(&self, user_id: Uuid) -> String {
        let mut conn = self.pool.acquire().await.expect("connection");
        let minted = tokens::mint();
        store::tokens::insert_token(&mut conn, user_id, "another", &minted)
            .await
            .expect("token inserted");
        minted.secret
    }

    /// PATCH a JSON body with a token.
    pub async fn patch_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path, Some(token))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// GET a JSON body with a token, asserting 200.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let resp = self.get(path, Some(token)).await;
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        resp.json().await.expect("a JSON body")
    }

    /// The caller's quota of `action` as `GET /v1/me` shows it.
    pub async fn quota(&self, token: &str, action: &str) -> Value {
        let me = self.get_json("/v1/me", token).await;
        (me["quotas"].as_array().into_iter().flatten())
            .find(|q| q["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} quota in {me}"))
    }

    /// The caller's quota of `action` once no running job holds a unit of it (10 s at most).
    pub async fn settled_quota(&self, token: &str, action: &str) -> Value {
        let mut quota = Value::Null;
        for _ in 0..200 {
            quota = self.quota(token, action).await;
            if quota["reserved"] == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        quota
    }
}

/// `n` queued `echo` jobs inserted in one statement: `n` `job.queued` events at once.
pub async fn insert_queued(pool: &PgPool, n: usize) {
    sqlx::query(
        "INSERT INTO jobs (id, kind, args, max_attempts) \
         SELECT gen_random_uuid(), 'echo', '{}', 1 FROM generate_series(1, $1)",
    )
    .bind(i32::try_from(n).expect("a count that fits"))
    .execute(pool)
    .await
    .expect("jobs inserted");
}
