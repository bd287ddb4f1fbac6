//! RFC 8291 message encryption: one `aes128gcm` record (the RFC 8188 content coding) for a
//! subscription's keys, with a fresh ephemeral key and salt per message.

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{EncodedPoint, PublicKey, SecretKey};
use sha2::Sha256;

use super::{Subscription, WebPushError};

/// The record size written in the header; the whole message is always one record.
const RECORD_SIZE: u32 = 4096;
/// salt (16) || rs (4) || idlen (1) || keyid (the 65-byte ephemeral public key).
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// The AES-GCM tag that each record carries.
const TAG_LEN: usize = 16;

/// The largest plaintext that fits one message: push services need only accept 4096-byte
/// bodies (RFC 8030 §7.2), less the header, the tag and the 0x02 padding delimiter.
pub const MAX_PAYLOAD: usize = 4096 - HEADER_LEN - TAG_LEN - 1;

/// A subscription's keys, decoded.
pub(super) struct Recipient {
    public: PublicKey,
    public_bytes: Vec<u8>,
    auth: [u8; 16],
}

impl Subscription {
    /// The subscription's keys, decoded and checked.
    pub(super) fn recipient(&self) -> Result<Recipient, WebPushError> {
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

/// A key's public point, uncompressed (65 bytes).
pub(super) fn uncompressed(secret: &SecretKey) -> EncodedPoint {
    secret.public_key().to_encoded_point(false)
}

/// A fresh random P-256 secret key.
pub(super) fn random_secret() -> SecretKey {
    // p256 0.13 takes a rand_core 0.6 RNG and rand 0.9 is rand_core 0.9, so draw the bytes
    // here; a draw that is zero or not below the curve order (about 2^-32) is drawn again.
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(secret) = SecretKey::from_bytes(&bytes.into()) {
            return secret;
        }
    }
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
}
