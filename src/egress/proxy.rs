//! The egress proxy: a filtering HTTP/1.1 forward proxy on loopback. Chromium is pointed at it
//! (`--proxy-server`), so navigations, redirects and subresources all pass the [`EgressPolicy`].
//!
//! It speaks just enough HTTP: `CONNECT host:port` tunnels (https) and absolute-form requests
//! (`GET http://host/path`). Each target is checked and resolved once by the policy, and the
//! proxy connects to exactly the checked address. One request per client connection: the
//! upstream request and the response both carry `Connection: close`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;
use url::{Position, Url};

use super::http::{self, Head, HeadError, RequestLine};
use super::{EgressError, EgressPolicy};

/// How long connecting to one upstream address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request head. Chromium opens spare proxy connections
/// ahead of use; one that idles this long is closed and Chromium simply opens another.
const CLIENT_HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// After an error answer, how long we keep reading what the client still sends (a request
/// body), so that closing does not reset the connection before the client reads the answer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const TOO_LARGE: &str = "431 Request Header Fields Too Large";

/// A running egress proxy on 127.0.0.1. Dropping it stops it, like [`Self::shutdown`] without
/// the wait.
pub struct EgressProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: AbortOnDropHandle<()>,
}

struct Shared {
    policy: Arc<EgressPolicy>,
    blocked: AtomicU64,
    last_refusal: Mutex<Option<EgressError>>,
}

impl Shared {
    fn record(&self, err: &EgressError) {
        self.blocked.fetch_add(1, Ordering::Relaxed);
        match err {
            EgressError::Blocked {
                host, ip, reason, ..
            } => tracing::info!(%host, %ip, reason, "egress proxy refused a blocked address"),
            EgressError::ForbiddenScheme { target, scheme } => {
                tracing::info!(%target, %scheme, "egress proxy refused a scheme");
            }
            other => tracing::info!(reason = %other, "egress proxy refused a target"),
        }
        *self
            .last_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(err.clone());
    }
}

impl EgressProxy {
    /// Binds 127.0.0.1 on a free port and starts serving with `policy`.
    pub async fn start(policy: Arc<EgressPolicy>) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            policy,
            blocked: AtomicU64::new(0),
            last_refusal: Mutex::new(None),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop.clone()));
        Ok(Self {
            addr,
            shared,
            stop,
            task: AbortOnDropHandle::new(task),
        })
    }

    /// The address to hand to clients, e.g. Chromium's `--proxy-server=http://{addr}`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests the policy has refused (forbidden scheme or blocked address).
    pub fn blocked(&self) -> u64 {
        self.shared.blocked.load(Ordering::Relaxed)
    }

    /// The most recent refusal, to tell a user why a page or resource did not load.
    pub fn last_refusal(&self) -> Option<EgressError> {
        self.shared
            .last_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops accepting, aborts open tunnels and requests, and waits until they are gone.
    pub async fn shutdown(self) {
        self.stop.cancel();
        // The loop only ends by cancellation; a JoinError would mean it panicked, and there is
        // nothing left to clean up either way.
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    let span = tracing::debug_span!("egress_proxy", %peer);
                    connections.spawn(
                        async move {
                            if let Err(err) = serve(stream, &shared).await {
                                tracing::debug!(error = %err, "egress proxy connection failed");
                            }
                        }
                        .instrument(span),
                    );
                }
                Err(err) => {
                    // Usually out of file descriptors: wait a little instead of spinning.
                    tracing::warn!(error = %err, "egress proxy could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    connections.shutdown().await;
}

async fn serve(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let mut buf = Vec::new();
    let read = tokio::time::timeout(CLIENT_HEAD_TIMEOUT, http::read_head(&mut client, &mut buf));
    let head_len = match read.await {
        Ok(Ok(len)) => len,
        Ok(Err(HeadError::TooLarge)) => {
            let body = "the request head is too large\n";
            return reply(&mut client, TOO_LARGE, false, body).await;
        }
        Ok(Err(HeadError::Io(err))) => return Err(err),
        Ok(Err(HeadError::Closed)) | Err(_) => return Ok(()),
    };
    let early = buf.split_off(head_len);
    let parsed = Head::parse(&buf).and_then(|head| Some((head.request_line()?, head)));
    let Some((line, request)) = parsed else {
        return reply(&mut client, "400 Bad Request", false, "malformed request\n").await;
    };
    if line.method.eq_ignore_ascii_case("CONNECT") {
        tunnel(client, shared, &line.target, &early).await
    } else {
        forward(client, shared, request, &line, &early).await
    }
}

/// `CONNECT host:port`: check, connect to the checked address, then pass bytes both ways.
async fn tunnel(
    mut client: TcpStream,
    shared: &Shared,
    target: &str,
    early: &[u8],
) -> io::Result<()> {
    let addrs = match shared.policy.resolve_authority(target).await {
        Ok(addrs) => addrs,
        Err(err) => return refuse(&mut client, shared, &err).await,
    };
    let mut upstream = match connect(&addrs).await {
        Ok(upstream) => upstream,
        Err(err) => {
            let body = format!("could not connect to {target}: {err}\n");
            return reply(&mut client, "502 Bad Gateway", false, &body).await;
        }
    };
    client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    upstream.write_all(early).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// `GET http://host/path`: check, connect to the checked address, send the request in
/// origin-form, then relay the response.
async fn forward(
    mut client: TcpStream,
    shared: &Shared,
    mut request: Head,
    line: &RequestLine,
    body_start: &[u8],
) -> io::Result<()> {
    if !line.target.contains("://") {
        let body = "the egress proxy serves absolute-form requests (GET http://host/path) \
                    and CONNECT tunnels only\n";
        return reply(&mut client, "400 Bad Request", false, body).await;
    }
    let url = match shared.policy.check_url(&line.target) {
        Ok(url) => url,
        Err(err) => return refuse(&mut client, shared, &err).await,
    };
    if url.scheme() != "http" {
        let body = "https URLs go through a CONNECT tunnel\n";
        return reply(&mut client, "400 Bad Request", false, body).await;
    }
    let addrs = match shared.policy.resolve(&url).await {
        Ok(addrs) => addrs,
        Err(err) => return refuse(&mut client, shared, &err).await,
    };
    let mut upstream = match connect(&addrs).await {
        Ok(upstream) => upstream,
        Err(err) => {
            let body = format!("could not connect to {url}: {err}\n");
            return reply(&mut client, "502 Bad Gateway", false, &body).await;
        }
    };
    origin_form(&mut request, line, &url);
    upstream.write_all(&request.to_bytes()).await?;
    upstream.write_all(body_start).await?;
    relay(client, upstream).await
}

/// Rewrites an absolute-form request for the origin server: path and query only in the request
/// line, `Host` from the URL (RFC 9112 §3.2.2), no hop-by-hop headers, and `Connection: close`.
fn origin_form(request: &mut Head, line: &RequestLine, url: &Url) {
    let path = &url[Position::BeforePath..Position::AfterQuery];
    request.start = format!("{} {path} {}", line.method, line.version);
    request.remove_hop_by_hop();
    request.set("Host", &url[Position::BeforeHost..Position::AfterPort]);
    request.set("Connection", "close");
}

/// Passes the request body up and the response down. The response head gets
/// `Connection: close`, so the client opens a new connection (and a new check) next time.
async fn relay(mut client: TcpStream, mut upstream: TcpStream) -> io::Result<()> {
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let upload = async {
        let copied = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
        copied
    };
    let download = async {
        relay_response_head(&mut upstream_read, &mut client_write).await?;
        tokio::io::copy(&mut upstream_read, &mut client_write).await?;
        client_write.shutdown().await
    };
    tokio::pin!(upload, download);
    // Once the response is through, whatever the client still sends has nowhere to go.
    tokio::select! {
        done = &mut download => done,
        _ = &mut upload => download.await,
    }
}

async fn relay_response_head<R, W>(upstream: &mut R, client: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    loop {
        let problem = match http::read_head(upstream, &mut buf).await {
            Ok(len) => {
                let rest = buf.split_off(len);
                match Head::parse(&buf).and_then(|head| Some((head.status()?, head))) {
                    // Interim answers pass unchanged; the final one follows.
                    Some((status, _)) if (100..200).contains(&status) && status != 101 => {
                        client.write_all(&buf).await?;
                        buf = rest;
                        continue;
                    }
                    Some((status, mut head)) => {
                        if status != 101 {
                            head.remove_hop_by_hop();
                            head.set("Connection", "close");
                        }
                        client.write_all(&head.to_bytes()).await?;
                        return client.write_all(&rest).await;
                    }
                    None => "the server sent a malformed response head",
                }
            }
            Err(HeadError::Closed) => "the server closed the connection without a response",
            Err(HeadError::TooLarge) => "the server's response head is too large",
            Err(HeadError::Io(err)) => return Err(err),
        };
        respond(client, "502 Bad Gateway", false, &format!("{problem}\n")).await?;
        return Err(io::Error::new(io::ErrorKind::InvalidData, problem));
    }
}

async fn connect(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to");
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(err)) => last = err,
            Err(_) => {
                let message = format!("connecting to {addr} timed out");
                last = io::Error::new(io::ErrorKind::TimedOut, message);
            }
        }
    }
    Err(last)
}

/// Answers a target the policy did not let through: 403 with `x-workhorse-egress: blocked` for
/// a refusal, 400 for a malformed target, 502 for a name that does not resolve.
async fn refuse(client: &mut TcpStream, shared: &Shared, err: &EgressError) -> io::Result<()> {
    let body = format!("{err}\n");
    match err {
        EgressError::BadUrl { .. } => reply(client, "400 Bad Request", false, &body).await,
        EgressError::Resolve { .. } => reply(client, "502 Bad Gateway", false, &body).await,
        EgressError::ForbiddenScheme { .. } | EgressError::Blocked { .. } => {
            shared.record(err);
            reply(client, "403 Forbidden", true, &body).await
        }
    }
}

/// Sends a final answer of the proxy's own and closes the connection gently.
async fn reply(client: &mut TcpStream, status: &str, blocked: bool, body: &str) -> io::Result<()> {
    respond(client, status, blocked, body).await?;
    client.shutdown().await?;
    // Closing with unread request bytes would reset the connection, and the client might lose
    // the answer; read what is still coming for a moment.
    let mut sink = [0u8; 8192];
    let drain = async { while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    Ok(())
}

async fn respond<W>(out: &mut W, status: &str, blocked: bool, body: &str) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let marker = if blocked {
        "X-Workhorse-Egress: blocked\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n{marker}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes()).await?;
    out.write_all(body.as_bytes()).await?;
    out.flush().await
}
