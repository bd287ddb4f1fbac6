//! Web Push: encrypted, VAPID-signed messages through the egress-checked client to a local push
//! service that decrypts them as the browser would; gone subscriptions, rate limits, size
//! limits, unreachable services and endpoints the egress policy refuses.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use workhorse::egress::{EgressPolicy, OutboundClient, OutboundError};
use workhorse::notify::webpush::{
    MAX_PAYLOAD, PushOutcome, Subscription, VapidKeys, WebPushError, encrypt, send,
    vapid_authorization,
};

use crate::push_service::{Behaviour, PushService};

const SUBJECT: &str = "mailto:ops@workhorse.example";

/// The daemon's outbound client with `egress.allow` set to `allow`.
fn outbound(allow: &[&str]) -> OutboundClient {
    // reqwest's rustls needs a process-wide provider when two are compiled in (DESIGN.md).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let allow: Vec<String> = allow.iter().map(|entry| (*entry).to_owned()).collect();
    let policy = EgressPolicy::new(&allow).expect("a valid allowlist");
    OutboundClient::new(Arc::new(policy), Duration::from_secs(10)).expect("a client")
}

/// A plain client, to play a sender that gets the protocol wrong.
fn raw_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// Sends through a client whose policy allows the local push service on 127.0.0.1.
async fn push(
    sub: &Subscription,
    payload: &[u8],
    urgency: Option<&str>,
) -> Result<PushOutcome, WebPushError> {
    let keys = VapidKeys::generate();
    send(
        &outbound(&["127.0.0.1"]),
        &keys,
        SUBJECT,
        sub,
        payload,
        3600,
        urgency,
    )
    .await
}

#[tokio::test]
async fn a_json_payload_reaches_the_browser_exactly_as_sent() {
    let service = PushService::start(Behaviour::Accept).await;
    let payload = json!({"title": "Summary ready", "body": "Run 42 finished ✓", "url": "/runs/42"});
    let payload = serde_json::to_vec(&payload).expect("JSON");

    let outcome = push(&service.subscription(), &payload, Some("high"))
        .await
        .expect("an answer");

    assert_eq!(outcome.status, 201, "{outcome:?} {:?}", service.rejected());
    assert!(!outcome.gone);
    let received = service.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].plaintext, payload);
    assert_eq!(received[0].ttl, 3600);
    assert_eq!(received[0].urgency.as_deref(), Some("high"));
    assert_eq!(received[0].subject, SUBJECT);
    assert!(received[0].expires_in > 0 && received[0].expires_in <= 24 * 3600);
}

#[tokio::test]
async fn without_an_urgency_no_urgency_header_is_sent() {
    let service = PushService::start(Behaviour::Accept).await;

    let outcome = push(&service.subscription(), b"{}", None)
        .await
        .expect("an answer");

    assert_eq!(outcome.status, 201, "{outcome:?} {:?}", service.rejected());
    assert_eq!(service.received()[0].urgency, None);
}

#[tokio::test]
async fn a_payload_of_exactly_max_payload_fits_the_push_services_4096_bytes() {
    let service = PushService::start(Behaviour::Accept).await;
    let payload = vec![b'a'; MAX_PAYLOAD];

    let outcome = push(&service.subscription(), &payload, None)
        .await
        .expect("an answer");

    assert_eq!(outcome.status, 201, "{outcome:?} {:?}", service.rejected());
    let received = service.received();
    assert_eq!(received[0].body_len, 4096);
    assert_eq!(received[0].plaintext, payload);
}

#[tokio::test]
async fn a_payload_over_max_payload_fails_before_any_request() {
    let service = PushService::start(Behaviour::Accept).await;

    let refused = push(&service.subscription(), &vec![b'a'; MAX_PAYLOAD + 1], None).await;

    assert!(
        matches!(refused, Err(WebPushError::PayloadTooLarge { size, max }) if size == MAX_PAYLOAD + 1 && max == MAX_PAYLOAD),
        "{refused:?}"
    );
    assert_eq!(service.count(), 0);
}

#[tokio::test]
async fn a_410_or_404_from_the_push_service_means_the_subscription_is_gone() {
    for status in [410, 404] {
        let service = PushService::start(Behaviour::Status(status)).await;

        let outcome = push(&service.subscription(), b"{}", None)
            .await
            .expect("an answer");

        assert_eq!(
            outcome.status,
            status,
            "{outcome:?} {:?}",
            service.rejected()
        );
        assert!(outcome.gone);
        assert!(outcome.described.starts_with(&format!("HTTP {status} ")));
    }
}

#[tokio::test]
async fn a_server_error_is_reported_but_not_gone() {
    let service = PushService::start(Behaviour::Status(503)).await;

    let outcome = push(&service.subscription(), b"{}", None)
        .await
        .expect("an answer");

    assert_eq!(outcome.status, 503, "{outcome:?} {:?}", service.rejected());
    assert!(!outcome.gone);
}

#[tokio::test]
async fn a_429_reports_its_retry_after() {
    let service = PushService::start(Behaviour::RateLimited(120)).await;

    let outcome = push(&service.subscription(), b"{}", None)
        .await
        .expect("an answer");

    assert_eq!(outcome.status, 429, "{outcome:?} {:?}", service.rejected());
    assert!(!outcome.gone);
    assert_eq!(outcome.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(outcome.described, "HTTP 429 Too Many Requests");
}

#[tokio::test]
async fn an_unreachable_push_service_is_a_transport_error() {
    let service = PushService::start(Behaviour::Accept).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = closed.local_addr().expect("an address").port();
    drop(closed);
    let sub = Subscription {
        endpoint: format!("http://127.0.0.1:{port}/push/dGhlLWJyb3dzZXJzLXRva2Vu"),
        ..service.subscription()
    };

    let failed = push(&sub, b"{}", None).await;

    match failed {
        Err(WebPushError::Outbound(why)) => {
            assert_eq!(why, OutboundError::Connection("connection refused"));
            assert!(!why.is_refusal());
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_subscription_with_a_broken_key_or_an_unknown_urgency_sends_nothing() {
    let service = PushService::start(Behaviour::Accept).await;
    let broken = Subscription {
        auth: "c2hvcnQ".to_owned(),
        ..service.subscription()
    };

    let bad_key = push(&broken, b"{}", None).await;
    let bad_urgency = push(&service.subscription(), b"{}", Some("urgent")).await;

    assert!(
        matches!(bad_key, Err(WebPushError::InvalidSubscription(_))),
        "{bad_key:?}"
    );
    assert!(
        matches!(bad_urgency, Err(WebPushError::Crypto(_))),
        "{bad_urgency:?}"
    );
    assert_eq!(service.count(), 0);
}

#[tokio::test]
async fn the_push_service_refuses_a_foreign_signature_and_a_missing_ttl() {
    // Guards the checks above: a service that accepted anything would pass them all.
    let service = PushService::start(Behaviour::Accept).await;
    let sub = service.subscription();
    let (signer, other) = (VapidKeys::generate(), VapidKeys::generate());
    let token = vapid_authorization(&signer, &sub.endpoint, SUBJECT, Duration::from_secs(600))
        .expect("a token");
    let forged = format!(
        "{}k={}",
        &token[..token.find("k=").expect("k=")],
        other.public_key()
    );
    let post = |authorization: String, ttl: Option<&str>| {
        let mut request = raw_client()
            .post(&sub.endpoint)
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("authorization", authorization)
            .body(encrypt(&sub, b"{}").expect("a body"));
        if let Some(ttl) = ttl {
            request = request.header("ttl", ttl);
        }
        request.send()
    };

    let forged = post(forged, Some("60")).await.expect("an answer");
    let no_ttl = post(token.clone(), None).await.expect("an answer");
    let genuine = post(token, Some("60")).await.expect("an answer");

    assert_eq!(forged.status(), 400);
    assert_eq!(no_ttl.status(), 400);
    assert_eq!(genuine.status(), 201, "{:?}", service.rejected());
    let rejected = service.rejected();
    assert!(rejected[0].contains("VAPID token"), "{rejected:?}");
    assert!(rejected[1].contains("TTL"), "{rejected:?}");
}

#[tokio::test]
async fn a_loopback_endpoint_is_refused_unless_egress_allow_names_it() {
    // The bug: a subscription endpoint on loopback was POSTed to, and its answer read back.
    let service = PushService::start(Behaviour::Accept).await;
    let keys = VapidKeys::generate();
    let sub = service.subscription();

    let refused = send(&outbound(&[]), &keys, SUBJECT, &sub, b"{}", 60, None).await;
    let allowed = send(
        &outbound(&["127.0.0.1"]),
        &keys,
        SUBJECT,
        &sub,
        b"{}",
        60,
        None,
    )
    .await;

    match refused {
        Err(WebPushError::Outbound(why)) => {
            assert_eq!(
                why.to_string(),
                "blocked_by_policy: loopback address 127.0.0.1"
            );
            assert!(why.is_refusal());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(allowed.expect("an answer").status, 201);
    assert_eq!(service.count(), 1, "only the allowed message arrived");
}

#[tokio::test]
async fn an_endpoint_whose_name_resolves_to_loopback_is_refused() {
    let service = PushService::start(Behaviour::Accept).await;
    let sub = service.subscription();
    let by_name = Subscription {
        endpoint: sub.endpoint.replace("127.0.0.1", "localhost"),
        ..sub
    };

    let keys = VapidKeys::generate();

    let refused = send(&outbound(&[]), &keys, SUBJECT, &by_name, b"{}", 60, None).await;

    match refused {
        Err(WebPushError::Outbound(OutboundError::Blocked { class, .. })) => {
            assert_eq!(class, "loopback address")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(service.count(), 0);
}
