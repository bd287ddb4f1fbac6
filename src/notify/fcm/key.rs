//! The service account: its JSON key file, and its PEM private key turned into a signing key.
//!
//! jsonwebtoken is built without its `use_pem` feature, so the PEM is unwrapped here: PEM, then
//! PKCS#8 (RFC 5208), then the PKCS#1 `RSAPrivateKey` that its aws-lc signer takes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Deserialize;

use super::FcmError;

/// The fields of a Google service-account JSON key that the sender needs (others are ignored).
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    /// The Firebase project the messages are sent for.
    pub project_id: String,
    /// The service account's email, the `iss` of the grant.
    pub client_email: String,
    /// The PEM private key (PKCS#8, as Google issues it, or PKCS#1).
    pub private_key: String,
    /// Google's token endpoint, normally `https://oauth2.googleapis.com/token`.
    pub token_uri: String,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key", &"[redacted]")
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

impl ServiceAccount {
    /// Reads a service-account key file's JSON; an error names the missing field, never the key.
    pub fn from_json(json: &str) -> Result<Self, FcmError> {
        // serde_json's messages name fields and positions; a wrong type for a string field can
        // only quote a number or a bool, so no key material reaches the error.
        let account: Self = serde_json::from_str(json)
            .map_err(|e| FcmError::Config(format!("reading the service-account key: {e}")))?;
        for (field, value) in [
            ("project_id", &account.project_id),
            ("client_email", &account.client_email),
            ("private_key", &account.private_key),
            ("token_uri", &account.token_uri),
        ] {
            if value.trim().is_empty() {
                return Err(FcmError::Config(format!(
                    "the service-account key has an empty `{field}`"
                )));
            }
        }
        Ok(account)
    }
}

/// The signing key from a PEM private key, tried once so a bad key fails here, not at a send.
/// Errors describe the key's shape only, never its content.
pub(super) fn signing_key(pem: &str) -> Result<EncodingKey, FcmError> {
    let bad = |why: &str| FcmError::Config(format!("the service account's private_key: {why}"));
    // Keys pasted into environment variables often carry `\n` literally.
    let pem = pem.replace("\\n", "\n");
    let (label, der) = pem_block(&pem).map_err(bad)?;
    let rsa_der = match label {
        "PRIVATE KEY" => pkcs8_rsa_key(&der).map_err(bad)?,
        "RSA PRIVATE KEY" => der,
        _ => return Err(bad("not an RSA private key")),
    };
    let key = EncodingKey::from_rsa_der(&rsa_der);
    jsonwebtoken::crypto::sign(b"probe", &key, Algorithm::RS256)
        .map_err(|_| bad("not a usable RSA key (2048 to 8192 bits)"))?;
    Ok(key)
}

/// The label and decoded body of the first PEM block.
fn pem_block(pem: &str) -> Result<(&str, Vec<u8>), &'static str> {
    let start = pem
        .find("-----BEGIN ")
        .ok_or("no `-----BEGIN` line (not PEM)")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or("a broken `-----BEGIN` line")?;
    let label = &rest[..label_end];
    let rest = &rest[label_end + "-----".len()..];
    let end = rest
        .find(&format!("-----END {label}-----"))
        .ok_or("no matching `-----END` line")?;
    let base64: String = rest[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(base64)
        .map_err(|_| "the PEM body is not base64")?;
    Ok((label, der))
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RFC 5208).
fn pkcs8_rsa_key(der: &[u8]) -> Result<Vec<u8>, &'static str> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const NOT_PKCS8: &str = "not a PKCS#8 private key";
    let Some((0x30, info, _)) = der_element(der) else {
        return Err(NOT_PKCS8);
    };
    let Some((0x02, _version, rest)) = der_element(info) else {
        return Err(NOT_PKCS8);
    };
    let Some((0x30, algorithm, rest)) = der_element(rest) else {
        return Err(NOT_PKCS8);
    };
    let Some((0x06, oid, _)) = der_element(algorithm) else {
        return Err(NOT_PKCS8);
    };
    if oid != RSA_ENCRYPTION {
        return Err("a PKCS#8 key that is not RSA");
    }
    let Some((0x04, key, _)) = der_element(rest) else {
        return Err(NOT_PKCS8);
    };
    Ok(key.to_vec())
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(octets)?;
        rest = after;
        bytes.iter().fold(0, |len, &b| len << 8 | usize::from(b))
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_json_names_the_missing_field() {
        let json = r#"{"type": "service_account", "project_id": "p",
            "private_key": "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n",
            "token_uri": "https://oauth2.googleapis.com/token"}"#;

        let error = ServiceAccount::from_json(json).expect_err("client_email is missing");

        let text = error.to_string();
        assert!(text.contains("client_email"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn debug_of_an_account_hides_the_key() {
        let account = ServiceAccount {
            project_id: "p".into(),
            client_email: "a@p.iam.gserviceaccount.com".into(),
            private_key: "SECRET".into(),
            token_uri: "https://oauth2.googleapis.com/token".into(),
        };

        assert!(!format!("{account:?}").contains("SECRET"));
    }

    #[test]
    fn a_key_that_is_not_pem_or_not_rsa_is_refused_without_quoting_it() {
        let not_pem = signing_key("SECRET").expect_err("not PEM");
        let ec =
            signing_key("-----BEGIN EC PRIVATE KEY-----\nU0VDUkVU\n-----END EC PRIVATE KEY-----")
                .expect_err("not RSA");
        let junk = signing_key("-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----")
            .expect_err("not PKCS#8");

        for error in [not_pem, ec, junk] {
            let text = error.to_string();
            assert!(matches!(error, FcmError::Config(_)), "{text}");
            assert!(
                !text.contains("SECRET") && !text.contains("U0VDUkVU"),
                "{text}"
            );
        }
    }

    #[test]
    fn der_element_reads_long_form_lengths_and_refuses_overruns() {
        let mut long = vec![0x04, 0x81, 200];
        long.extend(std::iter::repeat_n(7, 200));
        long.push(0xff);

        let (tag, contents, rest) = der_element(&long).expect("a long-form element");

        assert_eq!((tag, contents.len(), rest), (0x04, 200, &[0xff][..]));
        assert!(der_element(&[0x04, 0x05, 1, 2]).is_none());
    }
}
