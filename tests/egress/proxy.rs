//! Plain-http requests through the proxy: refusals, allowlisted targets, names and redirects.

use crate::helpers::{Reply, Upstream, client, header, raw_exchange, start_proxy};

#[tokio::test]
async fn a_loopback_url_is_refused_with_403_and_never_reaches_the_server() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("secret")).await;
    let proxy = start_proxy(&[]).await;

    let response = client(&proxy)
        .get(upstream.url("/"))
        .send()
        .await
        .expect("the proxy answers");

    assert_eq!(response.status(), 403);
    let marker = response.headers().get("x-workhorse-egress").cloned();
    assert_eq!(
        marker.as_ref().map(|value| value.as_bytes()),
        Some(&b"blocked"[..])
    );
    let body = response.text().await.expect("a body");
    assert!(body.contains("127.0.0.1 is a loopback address"), "{body}");
    assert!(body.contains("egress.allow"), "{body}");
    assert_eq!(upstream.connections(), 0);
    assert_eq!(proxy.blocked(), 1);
    assert!(proxy.last_refusal().is_some_and(|err| err.is_refusal()));
}

#[tokio::test]
async fn an_allowlisted_address_is_reached_and_the_body_comes_back() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("hello from upstream")).await;
    let proxy = start_proxy(&["127.0.0.1"]).await;

    let response = client(&proxy)
        .get(upstream.url("/page?q=1"))
        .send()
        .await
        .expect("the proxy answers");

    assert_eq!(response.status(), 200);
    let connection = response.headers().get("connection").cloned();
    assert_eq!(
        connection.as_ref().map(|value| value.as_bytes()),
        Some(&b"close"[..])
    );
    assert_eq!(
        response.text().await.expect("a body"),
        "hello from upstream"
    );
    assert_eq!(proxy.blocked(), 0);
}

#[tokio::test]
async fn the_forwarded_request_is_origin_form_with_the_url_host_and_no_proxy_headers() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("ok")).await;
    let proxy = start_proxy(&["127.0.0.1"]).await;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: elsewhere.example\r\nProxy-Connection: keep-alive\r\n\
         Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nAccept: text/plain\r\n\r\n",
        upstream.url("/a/b?c=d")
    );

    let answer = raw_exchange(&proxy, &request).await;

    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let received = upstream.requests();
    let head = &received.first().expect("one request").head;
    assert!(head.starts_with("GET /a/b?c=d HTTP/1.1\r\n"), "{head}");
    assert_eq!(
        header(head, "host"),
        Some(upstream.addr.to_string().as_str())
    );
    assert_eq!(header(head, "connection"), Some("close"));
    assert_eq!(header(head, "accept"), Some("text/plain"));
    assert_eq!(header(head, "proxy-connection"), None);
    assert_eq!(header(head, "x-hop"), None);
}

#[tokio::test]
async fn a_request_body_is_passed_to_the_server() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("stored")).await;
    let proxy = start_proxy(&["127.0.0.1"]).await;

    let response = client(&proxy)
        .post(upstream.url("/upload"))
        .body("ping")
        .send()
        .await
        .expect("the proxy answers");

    assert_eq!(response.status(), 200);
    let received = upstream.requests();
    assert_eq!(
        received.first().map(|request| request.body.as_slice()),
        Some(&b"ping"[..])
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_unless_allowlisted() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("local")).await;
    let url = format!("http://localhost:{}/", upstream.addr.port());
    let strict = start_proxy(&[]).await;
    let open = start_proxy(&["localhost"]).await;

    let refused = client(&strict)
        .get(&url)
        .send()
        .await
        .expect("the proxy answers");
    let allowed = client(&open)
        .get(&url)
        .send()
        .await
        .expect("the proxy answers");

    assert_eq!(refused.status(), 403);
    let body = refused.text().await.expect("a body");
    assert!(body.contains("localhost resolves to"), "{body}");
    assert_eq!(strict.blocked(), 1);
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.text().await.expect("a body"), "local");
    assert_eq!(open.blocked(), 0);
}

#[tokio::test]
async fn a_redirect_from_an_allowed_server_to_a_blocked_address_is_refused() {
    // 127.0.0.2 is loopback too, but only 127.0.0.1 is allowlisted.
    let hidden = Upstream::start("127.0.0.2", Reply::Text("internal")).await;
    let redirect = Reply::Redirect(hidden.url("/admin"));
    let public = Upstream::start("127.0.0.1", redirect).await;
    let proxy = start_proxy(&["127.0.0.1"]).await;

    let response = client(&proxy)
        .get(public.url("/"))
        .send()
        .await
        .expect("the proxy answers");

    assert_eq!(response.status(), 403);
    assert!(response.headers().contains_key("x-workhorse-egress"));
    assert_eq!(public.requests().len(), 1);
    assert_eq!(hidden.connections(), 0);
    assert_eq!(proxy.blocked(), 1);
}

#[tokio::test]
async fn other_schemes_in_absolute_form_are_refused() {
    let proxy = start_proxy(&[]).await;

    let answer = raw_exchange(&proxy, "GET ftp://example.com/file HTTP/1.1\r\n\r\n").await;

    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.contains("only http and https"), "{answer}");
    assert_eq!(proxy.blocked(), 1);
}

#[tokio::test]
async fn an_origin_form_request_to_the_proxy_itself_is_a_bad_request() {
    let proxy = start_proxy(&[]).await;

    let answer = raw_exchange(&proxy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;

    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert_eq!(proxy.blocked(), 0);
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let proxy = start_proxy(&[]).await;
    let request = format!(
        "GET http://example.com/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );

    let answer = raw_exchange(&proxy, &request).await;

    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
}
