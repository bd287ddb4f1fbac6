//! CONNECT tunnels through the proxy: refusals, byte passing and shutdown.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Reply, Upstream, client, header, raw_exchange, start_proxy};

#[tokio::test]
async fn https_to_a_blocked_address_fails_and_is_counted() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("secret")).await;
    let proxy = start_proxy(&[]).await;
    let url = format!("https://{}/", upstream.addr);

    let result = client(&proxy).get(url).send().await;

    assert!(result.is_err(), "{result:?}");
    assert_eq!(proxy.blocked(), 1);
    assert_eq!(upstream.connections(), 0);
}

#[tokio::test]
async fn connect_to_a_blocked_address_gets_403_with_the_marker() {
    let proxy = start_proxy(&[]).await;

    let answer = raw_exchange(&proxy, "CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n").await;

    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert_eq!(header(&answer, "x-workhorse-egress"), Some("blocked"));
    assert!(answer.contains("the cloud metadata address"), "{answer}");
    assert_eq!(proxy.blocked(), 1);
}

#[tokio::test]
async fn a_tunnel_to_an_allowlisted_address_passes_bytes_both_ways() {
    let upstream = Upstream::start("127.0.0.1", Reply::Text("through the tunnel")).await;
    let proxy = start_proxy(&["127.0.0.1"]).await;
    let mut stream = TcpStream::connect(proxy.addr())
        .await
        .expect("connect to the proxy");
    let connect = format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", upstream.addr);
    stream
        .write_all(connect.as_bytes())
        .await
        .expect("send CONNECT");
    let mut established = [0u8; 39];
    stream
        .read_exact(&mut established)
        .await
        .expect("the CONNECT answer");

    stream
        .write_all(b"GET /tunnelled HTTP/1.1\r\nHost: upstream\r\n\r\n")
        .await
        .expect("send through the tunnel");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .expect("read through the tunnel");

    assert_eq!(
        &established[..],
        b"HTTP/1.1 200 Connection Established\r\n\r\n"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.ends_with("through the tunnel"), "{answer}");
    let received = upstream.requests();
    let head = &received.first().expect("one request").head;
    assert!(head.starts_with("GET /tunnelled HTTP/1.1\r\n"), "{head}");
}

#[tokio::test]
async fn shutdown_closes_open_tunnels() {
    // The server waits for a request that never comes, so only the proxy can end the tunnel.
    let upstream = Upstream::start("127.0.0.1", Reply::Text("never sent")).await;
    let proxy = start_proxy(&["127.0.0.1"]).await;
    let mut stream = TcpStream::connect(proxy.addr())
        .await
        .expect("connect to the proxy");
    let connect = format!("CONNECT {} HTTP/1.1\r\n\r\n", upstream.addr);
    stream
        .write_all(connect.as_bytes())
        .await
        .expect("send CONNECT");
    let mut established = [0u8; 39];
    stream
        .read_exact(&mut established)
        .await
        .expect("the CONNECT answer");

    proxy.shutdown().await;

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the tunnel is still open after shutdown");
    assert!(rest.is_empty());
}
