//! The whole daemon for notification tests (`start`: the real `App` on port 0 with a user and
//! a token, `egress.allow = ["127.0.0.1"]` as delivery tests need) and a scripted webhook
//! receiver on a loopback address that records what reaches it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode as PoemStatus;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Request, Response, Route, handler};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::app::{App, Storage};
use workhorse::config::Config;
use workhorse::domain::tokens;
use workhorse::domain::users::{NewUser, Role};
use workhorse::store;

/// A running daemon and the token of its user `ann` (role user, the default plan).
pub struct Running {
    pub base: String,
    pub user_id: uuid::Uuid,
    pub token: String,
    pub pool: PgPool,
    client: reqwest::Client,
    shutdown: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    /// POST `body` to `path` as `ann`.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_as(&self.token, path, body).await
    }

    /// POST `body` to `path` with `token`.
    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        (self.client.post(format!("{}{path}", self.base)))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GET `path` as `ann`, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        (self.client.get(format!("{}{path}", self.base)))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Creates `ann`'s channel from `body`, asserting a 201; returns the channel.
    pub async fn channel(&self, body: &Value) -> Value {
        let resp = self.post("/v1/channels", body).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    /// A webhook channel of `ann`'s to `url`.
    pub async fn webhook(&self, url: &str) -> Value {
        self.channel(&json!({ "kind": "webhook", "name": "hook", "url": url }))
            .await
    }

    /// Send a channel's test event and wait until its delivery is no longer pending.
    pub async fn test_channel(&self, id: &str) -> Value {
        let resp = self
            .post(&format!("/v1/channels/{id}/test"), &json!({}))
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let delivery: Value = resp.json().await.unwrap();
        let path = format!("/v1/deliveries/{}", delivery["id"].as_str().unwrap());
        for _ in 0..200 {
            let d = self.get(&path).await;
            if d["state"] != "pending" {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("delivery {path} stayed pending");
    }

    /// A new user called `name` with `role`; returns their id and token.
    pub async fn user(&self, name: &str, role: Role) -> (uuid::Uuid, String) {
        let mut conn = self.pool.acquire().await.unwrap();
        let user =
            store::users::insert_user(&mut conn, &NewUser::parse(name, None, role, None).unwrap())
                .await
                .unwrap();
        let minted = tokens::mint();
        store::tokens::insert_token(&mut conn, user.id, "test", &minted)
            .await
            .unwrap();
        (user.id, minted.secret)
    }
}

/// Starts the daemon over `pool` after `configure` adjusted the test configuration.
pub async fn start(pool: PgPool, configure: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.egress.allow = vec!["127.0.0.1".into()];
    config.notify.retry_schedule = vec![Duration::from_millis(100)];
    configure(&mut config);
    let storage = Storage::from_pool(pool.clone()).await.unwrap();
    let app = App::with_storage(config, storage).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run());
    let mut running = Running {
        base,
        user_id: uuid::Uuid::nil(),
        token: String::new(),
        pool,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        shutdown,
        _dir: dir,
    };
    (running.user_id, running.token) = running.user("ann", Role::User).await;
    running
}

/// What a [`Receiver`] answers every request with.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: &'static str,
    /// A `Location` header, for redirects.
    pub location: Option<String>,
}

impl Reply {
    /// `status` with `body`.
    pub fn status(status: u16, body: &'static str) -> Self {
        Self {
            status,
            body,
            location: None,
        }
    }

    /// 302 to `location`.
    pub fn redirect(location: String) -> Self {
        Self {
            status: 302,
            body: "",
            location: Some(location),
        }
    }
}

/// A webhook receiver on a loopback address; records the peer address of each request that
/// reaches it (one port for several requests: one pooled connection).
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = (Arc<Mutex<Vec<String>>>, Reply);

#[handler]
async fn receive(req: &Request, state: poem::web::Data<&Shared>) -> Response {
    let (got, reply) = state.0;
    got.lock().unwrap().push(req.remote_addr().to_string());
    let mut response = Response::builder().status(PoemStatus::from_u16(reply.status).unwrap());
    if let Some(location) = &reply.location {
        response = response.header("location", location.as_str());
    }
    response.body(reply.body)
}

impl Receiver {
    /// Starts a receiver on `ip` (e.g. `127.0.0.1`) at a free port.
    pub async fn start(ip: &str, reply: Reply) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let app = Route::new()
            .at("/hook", poem::post(receive))
            .data((got.clone(), reply));
        let acceptor = TcpListener::bind(format!("{ip}:0"))
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { addr, got, server }
    }

    /// `http://{addr}/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// How many requests reached it.
    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// The peer address of each request, in order.
    pub fn peers(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}
