//! RFC 8292 VAPID: the application server's P-256 key pair and the signed token that tells a
//! push service who is sending.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::SecretKey;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use super::WebPushError;
use super::encryption::{random_secret, uncompressed};

/// RFC 8292 §2: a push service rejects a VAPID token that expires more than 24 hours ahead.
const MAX_VAPID_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Half the cap, as the web-push libraries do, so a clock running ahead of the push service's
/// by minutes or hours still stays inside its limit.
pub(super) const VAPID_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

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

/// The RFC 8292 `Authorization` value for a request to `endpoint`: an ES256 JWT whose `aud` is
/// the endpoint's origin, `sub` is `subject` (a `mailto:` or `https:` URI) and `exp` is
/// `expires_in` from now, capped at 24 hours; then the public key.
pub fn vapid_authorization(
    keys: &VapidKeys,
    endpoint: &str,
    subject: &str,
    expires_in: Duration,
) -> Result<String, WebPushError> {
    let audience = super::endpoint_url(endpoint)?
        .origin()
        .ascii_serialization();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8291 §5's application server key.
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
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
        let keys = VapidKeys::from_private_bytes(&b64(AS_PRIVATE)).expect("loads");

        let public = keys.public_key();

        assert_eq!(public, AS_PUBLIC);
        assert_eq!(public.len(), 87);
        assert_eq!(b64(&public)[0], 0x04);
        assert!(!format!("{keys:?}").contains(AS_PRIVATE));
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
