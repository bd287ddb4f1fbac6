//! The outbound client (webhooks, Web Push) against real loopback servers: what the policy
//! refuses never gets a connection, redirects are handed back rather than followed, and every
//! failure is named in short words without the URL.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use workhorse::egress::{EgressPolicy, OutboundClient, OutboundError};

use crate::helpers::{Reply, Upstream};

fn outbound(allow: &[&str], timeout: Duration) -> OutboundClient {
    // reqwest's rustls needs a process-wide provider when two are compiled in (see DESIGN.md).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let allow: Vec<String> = allow.iter().map(|entry| (*entry).to_owned()).collect();
    let policy = EgressPolicy::new(&allow).expect("a valid allowlist");
    OutboundClient::new(Arc::new(policy), timeout).expect("a client")
}

async fn post(client: &OutboundClient, url: &str) -> Result<u16, OutboundError> {
    let answer = client.post(url, HeaderMap::new(), b"{}".to_vec()).await?;
    Ok(answer.status.as_u16())
}

#[tokio::test]
async fn a_loopback_address_or_name_is_refused_before_any_connection() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("private")).await;
    let client = outbound(&[], Duration::from_secs(5));

    let by_address = post(&client, &upstream.url("/")).await;
    let by_name = post(
        &client,
        &format!("http://localhost:{}/", upstream.addr.port()),
    )
    .await;

    assert_eq!(
        by_address.map_err(|e| e.to_string()),
        Err("blocked_by_policy: loopback address 127.0.0.1".to_owned())
    );
    match by_name {
        Err(error @ OutboundError::Blocked { class, .. }) => {
            assert_eq!(class, "loopback address");
            assert!(error.is_refusal());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(upstream.connections(), 0);
}

#[tokio::test]
async fn an_allowlisted_address_is_reached_and_its_status_returned() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("hello")).await;
    let client = outbound(&["127.0.0.1"], Duration::from_secs(5));

    let status = post(&client, &upstream.url("/hook")).await;

    assert_eq!(status, Ok(200));
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].head.starts_with("POST /hook HTTP/1.1"));
    assert_eq!(requests[0].body, b"{}");
}

#[tokio::test]
async fn a_redirect_is_handed_back_not_followed() {
    let private = Upstream::start("127.0.0.2", Reply::Text("metadata")).await;
    let redirector = Upstream::start("127.0.0.1", Reply::Redirect(private.url("/"))).await;
    let client = outbound(&["127.0.0.1"], Duration::from_secs(5));

    let status = post(&client, &redirector.url("/")).await;

    assert_eq!(status, Ok(302));
    assert_eq!(private.connections(), 0);
}

#[tokio::test]
async fn other_schemes_are_refused_by_the_policy() {
    let client = outbound(&[], Duration::from_secs(5));

    let refused = post(&client, "ftp://files.example.com/x").await;

    assert_eq!(
        refused.map_err(|e| e.to_string()),
        Err("blocked_by_policy: scheme ftp is not http or https".to_owned())
    );
}

#[tokio::test]
async fn a_closed_port_is_connection_refused_and_a_silent_server_times_out() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = closed.local_addr().expect("an address").port();
    drop(closed);
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listener");
    let silent_port = silent.local_addr().expect("an address").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let client = outbound(&["127.0.0.1"], Duration::from_millis(500));

    let refused = post(&client, &format!("http://127.0.0.1:{port}/secret-path")).await;
    let timed_out = post(
        &client,
        &format!("http://127.0.0.1:{silent_port}/secret-path"),
    )
    .await;

    assert_eq!(
        refused,
        Err(OutboundError::Connection("connection refused"))
    );
    assert_eq!(timed_out, Err(OutboundError::Timeout));
    assert!(!refused.unwrap_err().is_refusal(), "worth another attempt");
    holder.abort();
}
