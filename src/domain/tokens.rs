//! API tokens: `wh_` followed by 43 URL-safe characters (256 random bits). Only a SHA-256 hash
//! is stored, so a leaked database does not leak usable tokens.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every token starts with this, so secret scanners and people can recognise one.
pub const TOKEN_PREFIX: &str = "wh_";
/// How many leading characters are kept in clear to tell tokens apart.
const SHOWN_PREFIX_LEN: usize = 10;

/// A freshly minted token: the secret is shown once, the hash and prefix are stored.
pub struct MintedToken {
    /// The bearer token itself.
    pub secret: String,
    /// SHA-256 of the secret.
    pub hash: Vec<u8>,
    /// First characters of the secret, for display.
    pub prefix: String,
}

/// Create a new random token.
pub fn mint() -> MintedToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", base64url(&bytes));
    MintedToken {
        hash: hash(&secret),
        prefix: secret[..SHOWN_PREFIX_LEN].to_string(),
        secret,
    }
}

/// SHA-256 of a presented token, for lookup. A slow hash is not needed: tokens carry 256 random
/// bits, so there is nothing to brute-force.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether a presented string can be a token at all (saves a query for garbage).
pub fn looks_like_token(secret: &str) -> bool {
    secret.len() == TOKEN_PREFIX.len() + 43
        && secret.starts_with(TOKEN_PREFIX)
        && secret[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Every stream ticket starts with this (a ticket is not a token: it only opens event streams).
pub const TICKET_PREFIX: &str = "wht_";

/// A new random stream ticket and its hash (the hash is stored).
pub fn mint_ticket() -> (String, Vec<u8>) {
    mint_secret(TICKET_PREFIX)
}

/// A new random secret (`prefix` and 256 random bits, URL-safe) and its hash.
pub fn mint_secret(prefix: &str) -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", base64url(&bytes));
    let hash = hash(&secret);
    (secret, hash)
}

/// Whether a presented string can be a stream ticket at all.
pub fn looks_like_ticket(secret: &str) -> bool {
    secret.len() == TICKET_PREFIX.len() + 43
        && secret.starts_with(TICKET_PREFIX)
        && secret[TICKET_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 1);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_unique_well_formed_and_hash_to_the_stored_hash() {
        let a = mint();
        let b = mint();
        assert_ne!(a.secret, b.secret);
        assert!(looks_like_token(&a.secret), "{}", a.secret);
        assert_eq!(hash(&a.secret), a.hash);
        assert!(a.secret.starts_with(&a.prefix));
    }

    #[test]
    fn garbage_does_not_look_like_a_token() {
        assert!(!looks_like_token("wh_short"));
        assert!(!looks_like_token(&format!("xx_{}", "a".repeat(43))));
        assert!(!looks_like_token(&format!("wh_{}!", "a".repeat(42))));
    }
}
