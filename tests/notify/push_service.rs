//! A local stand-in for a browser's push service (RFC 8030) with the browser behind it: checks
//! each message's headers and VAPID token (RFC 8292), decrypts its body the way the user agent
//! would (RFC 8291), records the plaintext and answers as scripted.

use std::sync::{Arc, Mutex};

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Request, Response, Route, handler, post};
use serde::Deserialize;
use sha2::Sha256;
use tokio::task::JoinHandle;
use workhorse::notify::webpush::Subscription;

/// What the push service answers once a message has passed its checks.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 201 Created, as for a message accepted for delivery.
    Accept,
    /// This status with a short body (404 and 410 mean the subscription is gone).
    Status(u16),
    /// 429 with `Retry-After` in seconds.
    RateLimited(u64),
}

/// One message that passed every check, as the browser would see it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The decrypted payload.
    pub plaintext: Vec<u8>,
    /// The `TTL` header.
    pub ttl: u32,
    /// The `Urgency` header, if any.
    pub urgency: Option<String>,
    /// The VAPID token's `sub`.
    pub subject: String,
    /// The VAPID token's `exp`, in seconds from when it arrived.
    pub expires_in: i64,
    /// The size of the encrypted body.
    pub body_len: usize,
}

/// The browser's side of a subscription: its key pair and authentication secret.
struct Browser {
    secret: SecretKey,
    auth: [u8; 16],
}

struct State {
    browser: Browser,
    origin: String,
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    rejected: Mutex<Vec<String>>,
}

/// The running push service; stops when dropped.
pub struct PushService {
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl PushService {
    /// Starts a push service on 127.0.0.1 at a free port, with a freshly subscribed browser.
    pub async fn start(behaviour: Behaviour) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the push service");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let state = Arc::new(State {
            browser: Browser::subscribe(),
            origin: format!("http://{addr}"),
            behaviour: Mutex::new(behaviour),
            received: Mutex::new(Vec::new()),
            rejected: Mutex::new(Vec::new()),
        });
        let app = Route::new()
            .at("/push/:token", post(push))
            .data(state.clone());
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { state, server }
    }

    /// The subscription the browser would hand to the application server.
    pub fn subscription(&self) -> Subscription {
        let browser = &self.state.browser;
        Subscription {
            endpoint: format!("{}/push/dGhlLWJyb3dzZXJzLXRva2Vu", self.state.origin),
            p256dh: URL_SAFE_NO_PAD.encode(browser.public_bytes()),
            auth: URL_SAFE_NO_PAD.encode(browser.auth),
        }
    }

    /// Every message that passed the checks.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("the log").clone()
    }

    /// Why each refused message was refused.
    pub fn rejected(&self) -> Vec<String> {
        self.state.rejected.lock().expect("the log").clone()
    }

    /// How many requests arrived, accepted or not.
    pub fn count(&self) -> usize {
        self.received().len() + self.rejected().len()
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
async fn push(req: &Request, body: Vec<u8>, state: Data<&Arc<State>>) -> Response {
    let received = match check(req, &body, &state) {
        Ok(received) => received,
        Err(why) => {
            state.rejected.lock().expect("the log").push(why.clone());
            return why.with_status(StatusCode::BAD_REQUEST).into_response();
        }
    };
    state.received.lock().expect("the log").push(received);
    match state.behaviour.lock().expect("the behaviour").clone() {
        Behaviour::Accept => StatusCode::CREATED.into_response(),
        Behaviour::Status(code) => {
            let status = StatusCode::from_u16(code).expect("a status");
            "push subscription has unsubscribed or expired."
                .with_status(status)
                .into_response()
        }
        Behaviour::RateLimited(seconds) => "Too many requests"
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_header("retry-after", seconds.to_string())
            .into_response(),
    }
}

fn check(req: &Request, body: &[u8], state: &State) -> Result<Received, String> {
    let header = |name: &str| req.header(name).map(str::to_owned);
    let ttl = header("ttl").ok_or("no TTL header")?;
    let ttl = ttl
        .parse()
        .map_err(|_| format!("TTL {ttl:?} is not a number"))?;
    if header("content-encoding").as_deref() != Some("aes128gcm") {
        return Err(format!("Content-Encoding {:?}", header("content-encoding")));
    }
    if header("content-type").as_deref() != Some("application/octet-stream") {
        return Err(format!("Content-Type {:?}", header("content-type")));
    }
    // RFC 8030 §7.2: a push service need not take more than 4096 bytes.
    if body.len() > 4096 {
        return Err(format!("a {}-byte body is over 4096", body.len()));
    }
    let claims = verify_vapid(&header("authorization").unwrap_or_default(), &state.origin)?;
    let plaintext = state.browser.decrypt(body)?;
    Ok(Received {
        plaintext,
        ttl,
        urgency: header("urgency"),
        subject: claims.sub,
        expires_in: claims.exp - chrono::Utc::now().timestamp(),
        body_len: body.len(),
    })
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

/// RFC 8292 §3: `vapid t=<JWT>, k=<public key>`, the JWT signed by that key with ES256.
fn verify_vapid(authorization: &str, origin: &str) -> Result<Claims, String> {
    let params = authorization
        .strip_prefix("vapid ")
        .ok_or_else(|| format!("Authorization {authorization:?} is not vapid"))?;
    let param = |name: &str| {
        params
            .split(',')
            .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("no {name}= in {params:?}"))
    };
    let (token, k) = (param("t")?, param("k")?);
    let k = URL_SAFE_NO_PAD.decode(k).map_err(|e| format!("k: {e}"))?;
    if k.len() != 65 || k[0] != 0x04 {
        return Err(format!("k is {} bytes, not an uncompressed point", k.len()));
    }
    let key = DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&k[1..33]),
        &URL_SAFE_NO_PAD.encode(&k[33..]),
    )
    .map_err(|e| format!("k: {e}"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| format!("the VAPID token: {e}"))?
        .claims;
    if claims.exp > chrono::Utc::now().timestamp() + 24 * 3600 {
        return Err("the VAPID token expires more than 24 hours ahead".to_owned());
    }
    if !(claims.sub.starts_with("mailto:") || claims.sub.starts_with("https:")) {
        return Err(format!("sub {:?} is not mailto: or https:", claims.sub));
    }
    Ok(claims)
}

impl Browser {
    /// A new subscription's keys, as `PushManager.subscribe()` makes them.
    fn subscribe() -> Self {
        let secret = loop {
            if let Ok(secret) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break secret;
            }
        };
        Self {
            secret,
            auth: rand::random(),
        }
    }

    fn public_bytes(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The user agent's side of RFC 8291 over RFC 8188: any number of records.
    fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        if body.len() < 21 {
            return Err(format!("a {}-byte body has no header", body.len()));
        }
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().expect("4 bytes")) as usize;
        let id_len = usize::from(body[20]);
        let key_id = body.get(21..21 + id_len).ok_or("the keyid is cut short")?;
        if rs < 18 {
            return Err(format!("record size {rs}"));
        }
        let as_public = PublicKey::from_sec1_bytes(key_id).map_err(|_| "keyid is not a point")?;
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), as_public.as_affine());

        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(&self.public_bytes());
        key_info.extend_from_slice(key_id);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&key_info, &mut ikm)
            .expect("32 bytes");
        let content = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        content
            .expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .expect("16 bytes");
        content
            .expand(b"Content-Encoding: nonce\0", &mut nonce)
            .expect("12 bytes");
        let cipher = Aes128Gcm::new(&cek.into());

        let records: Vec<&[u8]> = body[21 + id_len..].chunks(rs).collect();
        if records.is_empty() {
            return Err("no records".to_owned());
        }
        let mut plaintext = Vec::new();
        for (seq, record) in records.iter().enumerate() {
            let mut record_nonce = nonce;
            for (byte, seq_byte) in record_nonce[4..].iter_mut().zip((seq as u64).to_be_bytes()) {
                *byte ^= seq_byte;
            }
            let mut padded = cipher
                .decrypt(&record_nonce.into(), *record)
                .map_err(|_| format!("record {seq} does not decrypt"))?;
            while padded.last() == Some(&0) {
                padded.pop();
            }
            let last = seq + 1 == records.len();
            let delimiter = padded.pop();
            if delimiter != Some(if last { 2 } else { 1 }) {
                return Err(format!("record {seq} ends with {delimiter:?}"));
            }
            plaintext.extend_from_slice(&padded);
        }
        Ok(plaintext)
    }
}
