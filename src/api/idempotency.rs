//! `Idempotency-Key` for POSTs that start work: the same key with the same request gets the
//! first answer again (with `Idempotent-Replayed: true`), the same key with another request is
//! refused with 409. Keys are per user and honoured for 24 hours.
//!
//! An operation takes the header and a [`FingerprintedJson`] body (or computes a
//! [`fingerprint`] itself), then, inside the transaction that does the work:
//! [`Idempotency::claim`] first (a replay answers at once), the work, [`Idempotency::finish`]
//! with the answer, commit.

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::RequestBody;
use poem::{Body, FromRequest, IntoResponse, Request, Response};
use poem_openapi::error::ContentTypeError;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaHeader, MetaRequest, MetaResponses, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::{ApiError, Problem};
use crate::store;
use crate::store::idempotency::Claim;

/// The request header carrying the key.
pub const HEADER: &str = "Idempotency-Key";

/// The response header that marks a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The content type of replayed bodies, as `Json<T>` sends them.
const JSON: &str = "application/json; charset=utf-8";

/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// SHA-256 over a request's method, path and body bytes.
pub type Fingerprint = [u8; 32];

/// The fingerprint of a request: its method, path and exact body bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Fingerprint {
    let mut hash = Sha256::new();
    // Lengths first, so that no two different requests hash the same bytes.
    for part in [method.as_bytes(), path.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(body);
    hash.finalize().into()
}

/// A JSON body, like `Json<T>` (same schema, content types and errors), that also keeps the
/// request's [`fingerprint`].
pub struct FingerprintedJson<T> {
    /// The parsed body.
    pub value: T,
    /// Method, path and body bytes, hashed.
    pub fingerprint: Fingerprint,
}

impl<'a, T: ParseFromJSON> ApiExtractor<'a> for FingerprintedJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<T> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        <Json<T> as ApiExtractor>::request_meta()
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(content_type) if <Json<T> as Payload>::check_content_type(content_type) => {}
            Some(content_type) => {
                return Err(ContentTypeError::NotSupported {
                    content_type: content_type.to_string(),
                }
                .into());
            }
            None => return Err(ContentTypeError::ExpectContentType.into()),
        }
        let bytes = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        let fingerprint = fingerprint(request.method().as_str(), request.uri().path(), &bytes);
        // Parse exactly as `Json<T>` does, so errors read the same.
        let mut replayed = RequestBody::new(Body::from(bytes));
        let Json(value) = <Json<T> as ParsePayload>::from_request(request, &mut replayed).await?;
        Ok(Self { value, fingerprint })
    }
}

/// An operation's answer: built now, or the stored first answer to the same key.
pub enum Idempotent<R> {
    /// Built by this request (no key given).
    Fresh(R),
    /// Built by this request and stored under its key, or replayed from the store.
    Stored(Response),
}

impl<R: ApiResponse> ApiResponse for Idempotent<R> {
    fn meta() -> MetaResponses {
        let mut meta = R::meta();
        for response in &mut meta.responses {
            response.headers.push(MetaHeader {
                name: REPLAYED_HEADER.to_string(),
                description: Some(
                    "`true` when this is the stored answer to an earlier request with the same \
                     `Idempotency-Key` and body."
                        .to_string(),
                ),
                required: false,
                deprecated: false,
                schema: bool::schema_ref(),
            });
        }
        meta
    }

    fn register(registry: &mut Registry) {
        R::register(registry);
    }
}

impl<R: IntoResponse> IntoResponse for Idempotent<R> {
    fn into_response(self) -> Response {
        match self {
            Idempotent::Fresh(r) => r.into_response(),
            Idempotent::Stored(r) => r,
        }
    }
}

/// One request's key (if it sent one) and fingerprint.
pub struct Idempotency {
    user_id: Uuid,
    key: Option<String>,
    fingerprint: Fingerprint,
}

impl Idempotency {
    /// Read the `Idempotency-Key` header of `user_id`'s request: absent, or 1 to 255
    /// printable ASCII characters, else 400. The raw headers are read rather than poem's
    /// `Header` parameter, which silently drops values that are not ASCII: a key the client
    /// sent must never be ignored.
    pub fn new(user_id: Uuid, req: &Request, fingerprint: Fingerprint) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_request(format!(
                "{HEADER} must be one header of 1 to {MAX_KEY_LEN} printable ASCII characters"
            ))
        };
        let mut values = req.headers().get_all(HEADER).iter();
        let key = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(value), None) => {
                let key = value.as_bytes();
                if key.is_empty()
                    || key.len() > MAX_KEY_LEN
                    || !key.iter().all(|b| *b == b' ' || b.is_ascii_graphic())
                {
                    return Err(invalid());
                }
                Some(String::from_utf8_lossy(key).into_owned())
            }
            (Some(_), Some(_)) => return Err(invalid()),
        };
        Ok(Self {
            user_id,
            key,
            fingerprint,
        })
    }

    /// Whether the request carries a key (else claiming and finishing do nothing).
    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// Claim the key on `tx`, the transaction that will do the work, before doing it. `Some` is
    /// the answer to send instead: the first request's answer replayed, or 409 when that
    /// request was a different one.
    pub async fn claim<R>(&self, tx: &mut PgConnection) -> Result<Option<Idempotent<R>>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let stored =
            match store::idempotency::claim(tx, self.user_id, key, &self.fingerprint).await? {
                Claim::Claimed => return Ok(None),
                Claim::Taken(stored) => stored,
            };
        if stored.fingerprint != self.fingerprint {
            return Err(ApiError::Conflict(Json(Problem::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request; use a new \
                     key for a new request",
            ))));
        }
        let Some(status) = stored
            .status
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
        else {
            // Not reachable: the answer is saved before the claiming transaction commits.
            return Err(ApiError::conflict(
                "a request with this Idempotency-Key is still being processed; try again",
            ));
        };
        let mut replay = Response::builder().status(status);
        if let Some(location) = &stored.location {
            replay = replay.header(header::LOCATION, location.as_str());
        }
        let mut replay = match stored.body {
            Some(body) => replay.content_type(JSON).body(body),
            None => replay.finish(),
        };
        replay
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        Ok(Some(Idempotent::Stored(replay)))
    }

    /// Store `response` as the key's answer on `tx` (before it commits) and return it.
    pub async fn finish<R: IntoResponse>(
        &self,
        tx: &mut PgConnection,
        response: R,
    ) -> Result<Idempotent<R>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(Idempotent::Fresh(response));
        };
        let mut response = response.into_response();
        let bytes = response
            .take_body()
            .into_bytes()
            .await
            .map_err(|e| anyhow::anyhow!("reading back an answer to store it: {e}"))?;
        let body = std::str::from_utf8(&bytes)
            .map_err(|e| anyhow::anyhow!("an answer to store is not UTF-8: {e}"))?;
        let location = (response.headers().get(header::LOCATION)).and_then(|v| v.to_str().ok());
        store::idempotency::save(
            tx,
            self.user_id,
            key,
            response.status().as_u16() as i16,
            Some(body).filter(|b| !b.is_empty()),
            location,
        )
        .await?;
        response.set_body(bytes);
        Ok(Idempotent::Stored(response))
    }
}
