//! A local stand-in for Google: the OAuth2 token endpoint, which verifies the signed grant with
//! the test service account's public key and issues `tok-<n>`, and FCM HTTP v1, which checks the
//! bearer token and the message body and answers in FCM's wire format (errors chosen by device
//! token: `gone-device`, `bad-device`, `busy-device`, `other-sender-device`, `down-device`).

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::http::{HeaderMap, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Path};
use poem::{EndpointExt, Response, Route, handler, post};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use workhorse::notify::fcm::{FcmError, FcmSender, ServiceAccount};

/// The test service account's project.
pub const PROJECT: &str = "test-project";
/// The test service account's email, the grant's `iss`.
pub const CLIENT_EMAIL: &str = "workhorse@test-project.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A throwaway RSA key pair, made with the openssl CLI for these tests only.
pub struct KeyPair {
    /// PKCS#8 PEM, as in a Google service-account key file.
    pub private_pem: String,
    /// SubjectPublicKeyInfo DER, for verifying the grant.
    pub public_der: Vec<u8>,
}

/// Generates a 2048-bit RSA key pair with `openssl` in a temp dir.
pub fn generate_key_pair() -> KeyPair {
    let dir = tempfile::tempdir().expect("a temp dir");
    let private = dir.path().join("test-only-key.pem");
    let public = dir.path().join("test-only-key.pub.der");
    let run = |args: &[&str]| {
        // Captured, so openssl's progress dots stay out of the test output.
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("running openssl");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "openssl {args:?} failed: {stderr}");
    };
    let private_path = private.to_str().expect("a UTF-8 path");
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private_path,
    ]);
    let public_path = public.to_str().expect("a UTF-8 path");
    run(&[
        "pkey",
        "-in",
        private_path,
        "-pubout",
        "-outform",
        "DER",
        "-out",
        public_path,
    ]);
    KeyPair {
        private_pem: std::fs::read_to_string(&private).expect("the private key"),
        public_der: std::fs::read(&public).expect("the public key"),
    }
}

/// The key pair of the test service account, generated once per test binary.
pub fn keys() -> &'static KeyPair {
    static KEYS: OnceLock<KeyPair> = OnceLock::new();
    KEYS.get_or_init(generate_key_pair)
}

/// What the fake Google has seen and how it answers.
struct State {
    token_uri: String,
    public_der: Vec<u8>,
    /// `expires_in` of the tokens it issues.
    expires_in: AtomicU64,
    mints: AtomicUsize,
    fcm_requests: AtomicUsize,
    /// Issued access tokens and when they expire.
    issued: Mutex<HashMap<String, Instant>>,
    /// The `message` objects FCM accepted.
    delivered: Mutex<Vec<Value>>,
}

/// The running fake Google; stops when dropped.
pub struct FakeGoogle {
    state: Arc<State>,
    base: String,
    server: JoinHandle<()>,
}

impl FakeGoogle {
    /// Starts the fake on 127.0.0.1 at a free port.
    pub async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the fake Google");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let base = format!("http://{addr}");
        let state = Arc::new(State {
            token_uri: format!("{base}/token"),
            public_der: keys().public_der.clone(),
            expires_in: AtomicU64::new(3600),
            mints: AtomicUsize::new(0),
            fcm_requests: AtomicUsize::new(0),
            issued: Mutex::new(HashMap::new()),
            delivered: Mutex::new(Vec::new()),
        });
        let app = Route::new()
            .at("/token", post(token))
            .at("/v1/projects/:project/*action", post(fcm))
            .data(state.clone());
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            state,
            base,
            server,
        }
    }

    /// The base URL (the FCM API and `/token`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A service-account key file's JSON for the test account, its token URI pointing here.
    pub fn account_json(&self) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": PROJECT,
            "client_email": CLIENT_EMAIL,
            "private_key": keys().private_pem,
            "token_uri": self.state.token_uri,
        })
        .to_string()
    }

    /// A sender for the test service account, pointed at this server.
    pub fn sender(&self) -> FcmSender {
        self.sender_with_key(&keys().private_pem)
            .expect("a sender for the test account")
    }

    /// A sender for the test service account with this private key, pointed at this server.
    pub fn sender_with_key(&self, private_pem: &str) -> Result<FcmSender, FcmError> {
        let account = ServiceAccount {
            project_id: PROJECT.to_owned(),
            client_email: CLIENT_EMAIL.to_owned(),
            private_key: private_pem.to_owned(),
            token_uri: "https://oauth2.googleapis.com/token".to_owned(),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client");
        FcmSender::new(account, &self.base, Some(&self.state.token_uri), http)
    }

    /// Makes the tokens issued from now on expire after this many seconds.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state.expires_in.store(seconds, Ordering::SeqCst);
    }

    /// How many access tokens the token endpoint has issued.
    pub fn mints(&self) -> usize {
        self.state.mints.load(Ordering::SeqCst)
    }

    /// How many requests reached FCM.
    pub fn fcm_requests(&self) -> usize {
        self.state.fcm_requests.load(Ordering::SeqCst)
    }

    /// The `message` objects FCM accepted, in order.
    pub fn delivered(&self) -> Vec<Value> {
        self.state.delivered.lock().expect("the log").clone()
    }

    /// Forgets every token issued so far, as when Google revokes them.
    pub fn revoke_tokens(&self) {
        self.state.issued.lock().expect("the tokens").clear();
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
async fn token(headers: &HeaderMap, body: String, state: Data<&Arc<State>>) -> Response {
    match check_grant(headers, &body, &state) {
        Ok(()) => {
            let n = state.mints.fetch_add(1, Ordering::SeqCst) + 1;
            let access_token = format!("tok-{n}");
            let expires_in = state.expires_in.load(Ordering::SeqCst);
            state.issued.lock().expect("the tokens").insert(
                access_token.clone(),
                Instant::now() + Duration::from_secs(expires_in),
            );
            answer(
                StatusCode::OK,
                json!({"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"}),
            )
        }
        Err(why) => answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": why}),
        ),
    }
}

/// Checks the grant as Google does: form fields, then the assertion's signature and claims.
fn check_grant(headers: &HeaderMap, body: &str, state: &State) -> Result<(), String> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/x-www-form-urlencoded") {
        return Err(format!("content type {content_type:?}"));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if form.get("grant_type").map(String::as_str) != Some(GRANT_TYPE) {
        return Err(format!("grant_type {:?}", form.get("grant_type")));
    }
    let assertion = form.get("assertion").ok_or("no assertion")?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.token_uri]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    let key = DecodingKey::from_rsa_der(&state.public_der);
    let decoded = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("the assertion: {e}"))?;
    if decoded.header.typ.as_deref() != Some("JWT") {
        return Err(format!("typ {:?}", decoded.header.typ));
    }
    let claims = decoded.claims;
    if claims["scope"] != SCOPE {
        return Err(format!("scope {}", claims["scope"]));
    }
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    let now = chrono::Utc::now().timestamp();
    match (iat, exp) {
        (Some(iat), Some(exp)) if exp - iat == 3600 && (iat - now).abs() <= 5 => Ok(()),
        _ => Err(format!("iat {iat:?} and exp {exp:?} at {now}")),
    }
}

#[handler]
async fn fcm(
    Path((project, action)): Path<(String, String)>,
    headers: &HeaderMap,
    body: String,
    state: Data<&Arc<State>>,
) -> Response {
    let n = state.fcm_requests.fetch_add(1, Ordering::SeqCst) + 1;
    if project != PROJECT || action != "messages:send" {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("<html>404 Not Found</html>");
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let expiry = state
        .issued
        .lock()
        .expect("the tokens")
        .get(bearer)
        .copied();
    if expiry.is_none_or(|at| Instant::now() >= at) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            None,
            "Request had invalid authentication credentials.",
        );
    }
    let message = match check_message(headers, &body) {
        Ok(message) => message,
        Err(why) => return google_error(400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), &why),
    };
    match message["token"].as_str().unwrap_or_default() {
        "gone-device" => google_error(
            404,
            "NOT_FOUND",
            Some("UNREGISTERED"),
            "Requested entity was not found.",
        ),
        "bad-device" => google_error(
            400,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
            "The registration token is not a valid FCM registration token",
        ),
        "busy-device" => {
            let mut response = google_error(
                429,
                "RESOURCE_EXHAUSTED",
                Some("QUOTA_EXCEEDED"),
                "Quota exceeded.",
            );
            response
                .headers_mut()
                .insert("retry-after", "30".parse().expect("a header value"));
            response
        }
        "other-sender-device" => google_error(
            403,
            "PERMISSION_DENIED",
            Some("SENDER_ID_MISMATCH"),
            "SenderId mismatch",
        ),
        "down-device" => google_error(
            503,
            "UNAVAILABLE",
            Some("UNAVAILABLE"),
            "The service is currently unavailable.",
        ),
        _ => {
            state.delivered.lock().expect("the log").push(message);
            answer(
                StatusCode::OK,
                json!({"name": format!("projects/{PROJECT}/messages/{n}")}),
            )
        }
    }
}

/// Checks the body is `{"message": {token, notification: {title, body}, data?}}` with strings.
fn check_message(headers: &HeaderMap, body: &str) -> Result<Value, String> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/json") {
        return Err(format!("content type {content_type:?}"));
    }
    let body: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let outer = body.as_object().ok_or("the body is not an object")?;
    if outer.len() != 1 {
        return Err(format!("unexpected fields beside message: {body}"));
    }
    let message = outer.get("message").ok_or("no message")?;
    let fields = message.as_object().ok_or("message is not an object")?;
    let is_text = |v: &Value| v.is_string();
    for (field, value) in fields {
        let ok = match field.as_str() {
            "token" => value.as_str().is_some_and(|t| !t.is_empty()),
            "notification" => value.as_object().is_some_and(|n| {
                n.len() == 2
                    && n.get("title").is_some_and(is_text)
                    && n.get("body").is_some_and(is_text)
            }),
            "data" => value.as_object().is_some_and(|d| d.values().all(is_text)),
            _ => false,
        };
        if !ok {
            return Err(format!("Invalid value at 'message.{field}': {value}"));
        }
    }
    if !fields.contains_key("token") || !fields.contains_key("notification") {
        return Err(format!("token and notification are required: {message}"));
    }
    Ok(message.clone())
}

/// An error in FCM v1's shape, with an `FcmError` detail when `code` is given.
fn google_error(status: u16, name: &str, code: Option<&str>, message: &str) -> Response {
    let details: Vec<Value> = code
        .map(|code| {
            json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code})
        })
        .into_iter()
        .collect();
    let body =
        json!({"error": {"code": status, "message": message, "status": name, "details": details}});
    answer(StatusCode::from_u16(status).expect("a status"), body)
}

fn answer(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}
