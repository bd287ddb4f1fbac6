//! The FCM sender against a local server playing both Google's OAuth2 token endpoint (it
//! verifies the signed grant with the service account's public key) and FCM HTTP v1 (it checks
//! the bearer token and the message body, and answers in FCM's wire format).

pub mod fake_google;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use workhorse::notify::fcm::{
    DEFAULT_FCM_BASE, FcmError, FcmMessage, FcmOutcome, FcmSender, MAX_PAYLOAD, ServiceAccount,
};

use fake_google::{CLIENT_EMAIL, FakeGoogle, PROJECT, generate_key_pair, keys};

fn message() -> FcmMessage {
    FcmMessage {
        title: "Run finished".to_owned(),
        body: "Your summary of example.com is ready.".to_owned(),
        data: BTreeMap::from([("run_id".to_owned(), "42".to_owned())]),
    }
}

#[tokio::test]
async fn send_delivers_the_message_and_returns_fcms_name() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();

    let outcome = sender
        .send("device-1", &message())
        .await
        .expect("an answer");

    assert_eq!(
        outcome,
        FcmOutcome::Delivered {
            name: format!("projects/{PROJECT}/messages/1")
        }
    );
    assert_eq!(
        google.delivered(),
        vec![json!({
            "token": "device-1",
            "notification": {"title": "Run finished", "body": "Your summary of example.com is ready."},
            "data": {"run_id": "42"},
        })]
    );
}

#[tokio::test]
async fn one_token_serves_several_sends_and_is_minted_again_near_expiry() {
    let google = FakeGoogle::start().await;
    // Kept for 1 s: the sender retires tokens 60 s before Google's expiry.
    google.set_expires_in(61);
    let sender = google.sender();

    for device in ["device-1", "device-2", "device-3"] {
        let outcome = sender.send(device, &message()).await.expect("an answer");
        assert!(
            matches!(outcome, FcmOutcome::Delivered { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(google.mints(), 1);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let outcome = sender
        .send("device-4", &message())
        .await
        .expect("an answer");

    assert!(
        matches!(outcome, FcmOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    assert_eq!(google.mints(), 2);
}

#[tokio::test]
async fn concurrent_sends_share_one_minted_token() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();
    let message = message();

    let sends = (0..8).map(|i| {
        let (sender, message) = (&sender, &message);
        async move { sender.send(&format!("device-{i}"), message).await }
    });
    let outcomes = futures::future::join_all(sends).await;

    for outcome in outcomes {
        let outcome = outcome.expect("an answer");
        assert!(
            matches!(outcome, FcmOutcome::Delivered { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(google.mints(), 1);
}

#[tokio::test]
async fn an_unregistered_device_token_is_reported_as_unregistered() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();

    let outcome = sender
        .send("gone-device", &message())
        .await
        .expect("an answer");

    assert_eq!(outcome, FcmOutcome::Unregistered);
}

#[tokio::test]
async fn quota_exceeded_is_a_retry_after_fcms_retry_after() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();

    let outcome = sender
        .send("busy-device", &message())
        .await
        .expect("an answer");

    let FcmOutcome::Retry {
        after,
        status,
        reason,
    } = outcome
    else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert_eq!((after, status), (Some(Duration::from_secs(30)), 429));
    assert!(reason.contains("QUOTA_EXCEEDED"), "{reason}");
}

#[tokio::test]
async fn unavailable_is_a_retry_without_a_pause() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();

    let outcome = sender
        .send("down-device", &message())
        .await
        .expect("an answer");

    assert!(
        matches!(
            outcome,
            FcmOutcome::Retry {
                after: None,
                status: 503,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn invalid_argument_is_rejected() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();

    let outcome = sender
        .send("bad-device", &message())
        .await
        .expect("an answer");

    let FcmOutcome::Rejected { status, reason } = outcome else {
        panic!("expected a rejection, got {outcome:?}");
    };
    assert_eq!(status, 400);
    assert!(reason.contains("INVALID_ARGUMENT"), "{reason}");
}

#[tokio::test]
async fn sender_id_mismatch_is_rejected() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();

    let outcome = sender
        .send("other-sender-device", &message())
        .await
        .expect("an answer");

    assert!(
        matches!(&outcome, FcmOutcome::Rejected { status: 403, reason } if reason.contains("SENDER_ID_MISMATCH")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_payload_over_4096_bytes_is_refused_without_any_request() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();
    let mut big = message();
    big.body = "x".repeat(MAX_PAYLOAD);

    let error = sender.send("device-1", &big).await.expect_err("too large");

    assert!(
        matches!(error, FcmError::PayloadTooLarge { size, max: 4096 } if size > 4096),
        "{error:?}"
    );
    assert_eq!((google.mints(), google.fcm_requests()), (0, 0));
}

#[tokio::test]
async fn a_401_from_fcm_mints_a_fresh_token_and_sends_once_more() {
    let google = FakeGoogle::start().await;
    let sender = google.sender();
    sender
        .send("device-1", &message())
        .await
        .expect("an answer");
    google.revoke_tokens();

    let outcome = sender
        .send("device-2", &message())
        .await
        .expect("an answer");

    assert!(
        matches!(outcome, FcmOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    assert_eq!(google.mints(), 2);
    assert_eq!(google.fcm_requests(), 3);
}

#[tokio::test]
async fn a_grant_signed_with_another_key_is_a_token_error() {
    let google = FakeGoogle::start().await;
    let stranger = generate_key_pair();
    let sender = google
        .sender_with_key(&stranger.private_pem)
        .expect("a well-formed key");

    let error = sender
        .send("device-1", &message())
        .await
        .expect_err("refused");

    assert!(
        matches!(&error, FcmError::Token(why) if why.contains("invalid_grant")),
        "{error:?}"
    );
    assert_eq!(google.fcm_requests(), 0);
}

#[tokio::test]
async fn a_bad_private_key_is_a_config_error_at_construction() {
    let google = FakeGoogle::start().await;
    let lines: Vec<&str> = keys().private_pem.lines().collect();
    // The PEM frame kept, half the body lost: the DER inside no longer parses.
    let truncated = [&lines[..lines.len() / 2], &lines[lines.len() - 1..]]
        .concat()
        .join("\n");

    for bad in [truncated.as_str(), "not a key at all"] {
        let error = google.sender_with_key(bad).expect_err("a bad key");

        assert!(matches!(error, FcmError::Config(_)), "{error:?}");
        assert!(
            !error.to_string().contains(lines[1]),
            "the key leaked: {error}"
        );
    }
}

#[test]
fn a_service_account_key_file_is_read_and_the_missing_field_named() {
    let mut key_file = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "abc123",
        "private_key": keys().private_pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    });

    let account = ServiceAccount::from_json(&key_file.to_string()).expect("a key file");
    let http = reqwest::Client::new();
    FcmSender::new(account, DEFAULT_FCM_BASE, None, http).expect("a sender");

    key_file
        .as_object_mut()
        .expect("an object")
        .remove("token_uri");
    let error = ServiceAccount::from_json(&key_file.to_string()).expect_err("no token_uri");
    assert!(
        matches!(&error, FcmError::Config(why) if why.contains("token_uri")),
        "{error:?}"
    );
}
