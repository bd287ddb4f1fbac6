//! Web Push sender: RFC 8291 `aes128gcm` message encryption (the RFC 8188 content coding),
//! RFC 8292 VAPID authorisation and RFC 8030 delivery to a browser's push service.

use std::fmt;
use std::time::Duration;

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{EncodedPoint, PublicKey, SecretKey};
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use sha2::Sha256;
use url::Url;

/// The record size written in the header; the whole message is always one record.
const RECORD_SIZE: u32 = 4096;
/// salt (16) || rs (4) || idlen (1) || keyid (the 65-byte ephemeral public key).
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// The AES-GCM tag that each record carries.
const TAG_LEN: usize = 16;

/// The largest plaintext that fits one message: push services need only accept 4096-byte
/// bodies (RFC 8030 §7.2), less the header, the tag and the 0x02 padding delimiter.
pub const MAX_PAYLOAD: usize = 4096 - HEADER_LEN - TAG_LEN - 1;

/// RFC 8292 §2: a push service rejects a VAPID token that expires more than 24 hours ahead.
const MAX_VAPID_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Half the cap, as the web-push libraries do, so a clock running ahead of the push service's
/// by minutes or hours still stays inside its limit.
const VAPID_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// How much of a push service's answer a `PushOutcome` keeps.
const BODY_EXCERPT_CHARS: usize = 500;
/// The values RFC 8030 §5.3 defines for the `Urgency` header.
const URGENCIES: [&str; 4] = ["very-low", "low", "normal", "high"];

/// Why a push message could not be built or delivered.
#[derive(Debug, thiserror::Error)]
pub enum WebPushError {
    /// The subscription's endpoint or keys are unusable; sending again will not help.
    #[error("invalid push subscription: {0}")]
    InvalidSubscription(String),
    /// The plaintext does not fit one message.
    #[error("push payload is {size} bytes, more than the {max} that fit one message")]
    PayloadTooLarge {
        /// The payload's length in bytes.
        size: usize,
        /// [`MAX_PAYLOAD`].
        max: usize,
    },
    /// Our side could not build the message: a bad VAPID key or subject, an unknown urgency,
    /// a cipher failure. Permanent until the configuration changes; never the subscription's
    /// fault.
    #[error("web push: {0}")]
    Crypto(String),
    /// The push service could not be reached or did not answer; transient.
    #[error("push service unreachable: {0}")]
    Transport(String),
}

/// The application server's VAPID key pair (P-256).
#[derive(Clone)]
pub struct VapidKeys {
    secret: SecretKey,
}

impl VapidKeys {
    /// Generates a new random key pair.
    pub fn generate() -> Self {
        Self {
            secret: random_secret(),
        }
    }

    /// Loads a key pair from its 32-byte private scalar.
    pub fn from_private_bytes(bytes: &[u8]) -> Result<Self, WebPushError> {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
            WebPushError::Crypto(format!(
                "a VAPID private key is 32 bytes, not {}",
                bytes.len()
            ))
        })?;
        let secret = SecretKey::from_bytes(&bytes.into()).map_err(|_| {
            WebPushError::Crypto("the VAPID private key is not a valid P-256 scalar".to_owned())
        })?;
        Ok(Self { secret })
    }

    /// The 32-byte private scalar, for storing the key pair.
    pub fn private_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes().into()
    }

    /// The uncompressed public point in unpadded base64url: the `applicationServerKey`
    /// browsers subscribe with.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(uncompressed(&self.secret))
    }
}

impl fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it (keys in base64url).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The push service URL to POST messages to.
    pub endpoint: String,
    /// The user agent's P-256 public key: a 65-byte uncompressed point.
    pub p256dh: String,
    /// The user agent's 16-byte authentication secret.
    pub auth: String,
}

/// A subscription's keys, decoded.
struct Recipient {
    public: PublicKey,
    public_bytes: Vec<u8>,
    auth: [u8; 16],
}

impl Subscription {
    /// Checks the endpoint (https, or http for tests) and decodes both keys.
    pub fn validate(&self) -> Result<(), WebPushError> {
        self.endpoint_url()?;
        self.recipient()?;
        Ok(())
    }

    fn endpoint_url(&self) -> Result<Url, WebPushError> {
        endpoint_url(&self.endpoint)
    }

    fn recipient(&self) -> Result<Recipient, WebPushError> {
        let public_bytes = decode_key("p256dh", &self.p256dh)?;
        if public_bytes.len() != 65 || public_bytes[0] != 0x04 {
            return Err(WebPushError::InvalidSubscription(format!(
                "p256dh is {} bytes, not a 65-byte uncompressed point",
                public_bytes.len()
            )));
        }
        let public = PublicKey::from_sec1_bytes(&public_bytes).map_err(|_| {
            WebPushError::InvalidSubscription("p256dh is not a point on P-256".to_owned())
        })?;
        let auth = decode_key("auth", &self.auth)?;
        let auth = auth.as_slice().try_into().map_err(|_| {
            WebPushError::InvalidSubscription(format!("auth is {} bytes, not 16", auth.len()))
        })?;
        Ok(Recipient {
            public,
            public_bytes,
            auth,
        })
    }
}

/// Encrypts `payload` for the subscription (RFC 8291) as one `aes128gcm` record with a fresh
/// ephemeral key and salt; the result is the request body.
pub fn encrypt(sub: &Subscription, payload: &[u8]) -> Result<Vec<u8>, WebPushError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(WebPushError::PayloadTooLarge {
            size: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    encrypt_with(&sub.recipient()?, payload, &random_secret(), rand::random())
}

/// RFC 8291 §3.4 and RFC 8188 §2 with the ephemeral key and salt given, so the RFC's example
/// can be reproduced.
fn encrypt_with(
    to: &Recipient,
    payload: &[u8],
    ephemeral: &SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, WebPushError> {
    let as_public = uncompressed(ephemeral);
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), to.public.as_affine());
    let keys = derive_keys(
        shared.raw_secret_bytes(),
        &to.auth,
        &to.public_bytes,
        as_public.as_bytes(),
        &salt,
    )?;
    let mut record = Vec::with_capacity(payload.len() + 1);
    record.extend_from_slice(payload);
    // The last (and only) record ends with the 0x02 delimiter and no further padding.
    record.push(0x02);
    // A single record has sequence number 0, so its nonce is NONCE itself.
    let sealed = Aes128Gcm::new(&keys.cek.into())
        .encrypt(&keys.nonce.into(), record.as_slice())
        .map_err(|_| WebPushError::Crypto("AES-128-GCM encryption failed".to_owned()))?;
    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The keys RFC 8291 §3.3–3.4 derives for one message.
struct ContentKeys {
    ikm: [u8; 32],
    cek: [u8; 16],
    nonce: [u8; 12],
}

fn derive_keys(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Result<ContentKeys, WebPushError> {
    let hkdf_failed = |_| WebPushError::Crypto("HKDF expansion failed".to_owned());
    let mut key_info = Vec::with_capacity(14 + ua_public.len() + as_public.len());
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut keys = ContentKeys {
        ikm: [0; 32],
        cek: [0; 16],
        nonce: [0; 12],
    };
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&key_info, &mut keys.ikm)
        .map_err(hkdf_failed)?;
    let content = Hkdf::<Sha256>::new(Some(salt), &keys.ikm);
    content
        .expand(b"Content-Encoding: aes128gcm\0", &mut keys.cek)
        .map_err(hkdf_failed)?;
    content
        .expand(b"Content-Encoding: nonce\0", &mut keys.nonce)
        .map_err(hkdf_failed)?;
    Ok(keys)
}

/// The RFC 8292 `Authorization` value for a request to `endpoint`: an ES256 JWT whose `aud` is
/// the endpoint's origin, `sub` is `subject` (a `mailto:` or `https:` URI) and `exp` is
/// `expires_in` from now, capped at 24 hours; then the public key.
pub fn vapid_authorization(
    keys: &VapidKeys,
    endpoint: &str,
    subject: &str,
    expires_in: Duration,
) -> Result<String, WebPushError> {
    let audience = endpoint_url(endpoint)?.origin().ascii_serialization();
    if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
        return Err(WebPushError::Crypto(format!(
            "the VAPID subject {subject:?} is neither a mailto: nor an https: URI"
        )));
    }
    let lifetime = expires_in.min(MAX_VAPID_LIFETIME).as_secs() as i64;
    let claims = serde_json::json!({
        "aud": audience,
        "exp": chrono::Utc::now().timestamp() + lifetime,
        "sub": subject,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // ES256 in a JWS is the raw 64-byte r || s, which is what `Signature::to_bytes` gives.
    let signature: Signature = SigningKey::from(&keys.secret)
        .try_sign(signing_input.as_bytes())
        .map_err(|e| WebPushError::Crypto(format!("signing the VAPID token: {e}")))?;
    Ok(format!(
        "vapid t={signing_input}.{}, k={}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        keys.public_key()
    ))
}

/// What the push service answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushOutcome {
    /// The HTTP status; 201 means accepted.
    pub status: u16,
    /// 404 or 410: the subscription no longer exists and should be deleted.
    pub gone: bool,
    /// The service's `Retry-After`, in seconds or as a date, if it sent one.
    pub retry_after: Option<Duration>,
    /// The first 500 characters of the answer's body.
    pub body: String,
}

/// Encrypts `payload` and POSTs it to the subscription's endpoint with VAPID, `TTL` (seconds the
/// service may hold it) and, if given, `Urgency`. Any answer is an `Ok(PushOutcome)`; failing to
/// reach the service is `Transport`. Timeouts are the client's.
pub async fn send(
    http: &reqwest::Client,
    keys: &VapidKeys,
    subject: &str,
    sub: &Subscription,
    payload: &[u8],
    ttl: u32,
    urgency: Option<&str>,
) -> Result<PushOutcome, WebPushError> {
    let endpoint = sub.endpoint_url()?;
    let body = encrypt(sub, payload)?;
    let mut authorization = HeaderValue::try_from(vapid_authorization(
        keys,
        &sub.endpoint,
        subject,
        VAPID_LIFETIME,
    )?)
    .map_err(|e| WebPushError::Crypto(format!("the VAPID header: {e}")))?;
    authorization.set_sensitive(true);
    let mut request = http
        .post(endpoint)
        .header(CONTENT_ENCODING, "aes128gcm")
        .header(CONTENT_TYPE, "application/octet-stream")
        .header("ttl", ttl)
        .header(AUTHORIZATION, authorization);
    if let Some(urgency) = urgency {
        if !URGENCIES.contains(&urgency) {
            return Err(WebPushError::Crypto(format!(
                "urgency {urgency:?} is not one of {URGENCIES:?}"
            )));
        }
        request = request.header("urgency", urgency);
    }
    let response = request.body(body).send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    Ok(PushOutcome {
        status,
        gone: status == 404 || status == 410,
        retry_after,
        body: excerpt(response).await,
    })
}

fn endpoint_url(endpoint: &str) -> Result<Url, WebPushError> {
    // The endpoint is a capability URL, so errors name its problem but never repeat it.
    let url = Url::parse(endpoint).map_err(|e| {
        WebPushError::InvalidSubscription(format!("the endpoint is not a URL: {e}"))
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(WebPushError::InvalidSubscription(format!(
            "the endpoint must be an https URL with a host, not {}:",
            url.scheme()
        )));
    }
    Ok(url)
}

/// Decodes a subscription key: base64url as browsers give it, tolerating padding and the
/// standard alphabet that some client code converts to.
fn decode_key(name: &str, value: &str) -> Result<Vec<u8>, WebPushError> {
    let value = value.trim().trim_end_matches('=');
    let engine: &GeneralPurpose = if value.contains(['+', '/']) {
        &STANDARD_NO_PAD
    } else {
        &URL_SAFE_NO_PAD
    };
    engine
        .decode(value)
        .map_err(|e| WebPushError::InvalidSubscription(format!("{name} is not base64url: {e}")))
}

fn uncompressed(secret: &SecretKey) -> EncodedPoint {
    secret.public_key().to_encoded_point(false)
}

fn random_secret() -> SecretKey {
    // p256 0.13 takes a rand_core 0.6 RNG and rand 0.9 is rand_core 0.9, so draw the bytes
    // here; a draw that is zero or not below the curve order (about 2^-32) is drawn again.
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(secret) = SecretKey::from_bytes(&bytes.into()) {
            return secret;
        }
    }
}

fn transport(e: reqwest::Error) -> WebPushError {
    // Drop the URL: the endpoint is a capability and would end up in logs.
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    WebPushError::Transport(text)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

async fn excerpt(mut response: reqwest::Response) -> String {
    // Read no more than 500 characters can take; a body that breaks off mid-way still has its
    // status, which is what counts.
    let mut bytes = Vec::new();
    while bytes.len() < BODY_EXCERPT_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(BODY_EXCERPT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8291 §5 (Appendix A has the same values).
    mod rfc8291 {
        pub const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
        pub const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
        pub const AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
        pub const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        pub const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
        pub const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
        pub const ECDH_SECRET: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
        pub const IKM: &str = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg";
        pub const CEK: &str = "oIhVW04MRdy2XN9CiKLxTg";
        pub const NONCE: &str = "4h_95klXJ5E_qnoN";
        pub const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
    }

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
    }

    fn rfc_subscription() -> Subscription {
        Subscription {
            endpoint: "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV".to_owned(),
            p256dh: rfc8291::UA_PUBLIC.to_owned(),
            auth: rfc8291::AUTH.to_owned(),
        }
    }

    fn subscription_to(endpoint: &str) -> Subscription {
        Subscription {
            endpoint: endpoint.to_owned(),
            ..rfc_subscription()
        }
    }

    #[test]
    fn the_rfc_8291_example_is_reproduced_byte_for_byte() {
        let recipient = rfc_subscription().recipient().expect("the RFC's keys");
        let ephemeral = SecretKey::from_slice(&b64(rfc8291::AS_PRIVATE)).expect("a scalar");
        let salt: [u8; 16] = b64(rfc8291::SALT).try_into().expect("16 bytes");
        assert_eq!(uncompressed(&ephemeral).as_bytes(), b64(rfc8291::AS_PUBLIC));

        let shared =
            p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), recipient.public.as_affine());
        let keys = derive_keys(
            shared.raw_secret_bytes(),
            &recipient.auth,
            &recipient.public_bytes,
            &b64(rfc8291::AS_PUBLIC),
            &salt,
        )
        .expect("keys");
        let body = encrypt_with(&recipient, rfc8291::PLAINTEXT, &ephemeral, salt).expect("body");

        assert_eq!(&shared.raw_secret_bytes()[..], b64(rfc8291::ECDH_SECRET));
        assert_eq!(keys.ikm.as_slice(), b64(rfc8291::IKM));
        assert_eq!(keys.cek.as_slice(), b64(rfc8291::CEK));
        assert_eq!(keys.nonce.as_slice(), b64(rfc8291::NONCE));
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), rfc8291::BODY);
    }

    #[test]
    fn vapid_keys_round_trip_through_their_private_bytes() {
        let keys = VapidKeys::generate();

        let loaded = VapidKeys::from_private_bytes(&keys.private_bytes()).expect("loads");

        assert_eq!(loaded.private_bytes(), keys.private_bytes());
        assert_eq!(loaded.public_key(), keys.public_key());
        assert_ne!(VapidKeys::generate().public_key(), keys.public_key());
    }

    #[test]
    fn the_public_key_is_an_uncompressed_point_in_unpadded_base64url() {
        let keys = VapidKeys::from_private_bytes(&b64(rfc8291::AS_PRIVATE)).expect("loads");

        let public = keys.public_key();

        assert_eq!(public, rfc8291::AS_PUBLIC);
        assert_eq!(public.len(), 87);
        assert_eq!(b64(&public)[0], 0x04);
        assert!(!format!("{keys:?}").contains(rfc8291::AS_PRIVATE));
    }

    #[test]
    fn private_keys_of_the_wrong_length_or_zero_are_refused() {
        for bytes in [
            &[7u8; 31][..],
            &[7u8; 33][..],
            &[0u8; 32][..],
            &[0xffu8; 32][..],
        ] {
            let refused = VapidKeys::from_private_bytes(bytes);
            assert!(matches!(refused, Err(WebPushError::Crypto(_))), "{bytes:?}");
        }
    }

    #[test]
    fn max_payload_fills_exactly_one_4096_byte_message() {
        let sub = rfc_subscription();

        let full = encrypt(&sub, &[b'x'; MAX_PAYLOAD]).expect("fits");
        let over = encrypt(&sub, &[b'x'; MAX_PAYLOAD + 1]);

        assert_eq!(MAX_PAYLOAD, 3993);
        assert_eq!(full.len(), 4096);
        assert!(matches!(
            over,
            Err(WebPushError::PayloadTooLarge {
                size: 3994,
                max: 3993
            })
        ));
    }

    #[test]
    fn each_message_has_its_own_salt_and_ephemeral_key() {
        let sub = rfc_subscription();

        let first = encrypt(&sub, b"{}").expect("first");
        let second = encrypt(&sub, b"{}").expect("second");

        assert_eq!(first[16..21], [0, 0, 0x10, 0, 65]);
        assert_ne!(first[..16], second[..16]);
        assert_ne!(first[21..86], second[21..86]);
    }

    #[test]
    fn validate_accepts_browser_keys_with_padding_or_the_standard_alphabet() {
        let standard = |text: &str| base64::engine::general_purpose::STANDARD.encode(b64(text));
        let sub = Subscription {
            p256dh: standard(rfc8291::UA_PUBLIC),
            auth: standard(rfc8291::AUTH),
            ..rfc_subscription()
        };

        assert!(rfc_subscription().validate().is_ok());
        assert!(
            subscription_to("http://127.0.0.1:8080/push/1")
                .validate()
                .is_ok()
        );
        assert!(sub.validate().is_ok(), "{sub:?}");
    }

    #[test]
    fn validate_refuses_bad_endpoints_and_keys() {
        let compressed = URL_SAFE_NO_PAD.encode(
            PublicKey::from_sec1_bytes(&b64(rfc8291::UA_PUBLIC))
                .expect("a point")
                .to_encoded_point(true),
        );
        let mut off_curve = b64(rfc8291::UA_PUBLIC);
        off_curve[64] ^= 1;
        let cases = [
            subscription_to("ftp://push.example.net/1"),
            subscription_to("not a url"),
            Subscription {
                p256dh: compressed,
                ..rfc_subscription()
            },
            Subscription {
                p256dh: URL_SAFE_NO_PAD.encode(off_curve),
                ..rfc_subscription()
            },
            Subscription {
                p256dh: "!!".to_owned(),
                ..rfc_subscription()
            },
            Subscription {
                auth: URL_SAFE_NO_PAD.encode([1u8; 12]),
                ..rfc_subscription()
            },
        ];

        for sub in cases {
            let refused = sub.validate();
            assert!(
                matches!(refused, Err(WebPushError::InvalidSubscription(_))),
                "{sub:?}"
            );
        }
    }

    #[test]
    fn the_vapid_token_is_signed_for_the_endpoint_origin_and_expires_within_24_hours() {
        use p256::ecdsa::VerifyingKey;
        use p256::ecdsa::signature::Verifier;
        let keys = VapidKeys::generate();
        let endpoint = "https://push.example.net:8443/wpush/v2/abc?x=1";

        let value = vapid_authorization(
            &keys,
            endpoint,
            "mailto:ops@example.org",
            Duration::from_secs(7 * 24 * 3600),
        )
        .expect("a header");

        let (token, k) = value
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .expect("vapid t=…, k=…");
        assert_eq!(k, keys.public_key());
        let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
        let (header, claims) = signing_input.split_once('.').expect("three parts");
        let header: serde_json::Value = serde_json::from_slice(&b64(header)).expect("JSON");
        let claims: serde_json::Value = serde_json::from_slice(&b64(claims)).expect("JSON");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["sub"], "mailto:ops@example.org");
        let exp = claims["exp"].as_i64().expect("exp") - chrono::Utc::now().timestamp();
        assert!((86_390..=86_400).contains(&exp), "{exp}");
        let verifying = VerifyingKey::from_sec1_bytes(&b64(k)).expect("a key");
        let signature = Signature::from_slice(&b64(signature)).expect("r || s");
        assert!(
            verifying
                .verify(signing_input.as_bytes(), &signature)
                .is_ok()
        );
    }

    #[test]
    fn a_vapid_subject_must_be_a_mailto_or_https_uri() {
        let keys = VapidKeys::generate();
        let endpoint = "https://push.example.net/1";

        let ok = vapid_authorization(
            &keys,
            endpoint,
            "https://example.org/contact",
            Duration::from_secs(60),
        );
        let refused =
            vapid_authorization(&keys, endpoint, "ops@example.org", Duration::from_secs(60));

        assert!(ok.is_ok());
        assert!(matches!(refused, Err(WebPushError::Crypto(_))));
    }
}
