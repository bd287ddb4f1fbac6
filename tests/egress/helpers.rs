//! Test helpers: a proxy with a given allowlist, a reqwest client that uses it, and a tiny HTTP
//! server that records what reaches it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use workhorse::egress::{EgressPolicy, EgressProxy};

/// Starts a proxy whose `egress.allow` is `allow`.
pub async fn start_proxy(allow: &[&str]) -> EgressProxy {
    let allow: Vec<String> = allow.iter().map(|entry| (*entry).to_owned()).collect();
    let policy = EgressPolicy::new(&allow).expect("a valid allowlist");
    EgressProxy::start(Arc::new(policy))
        .await
        .expect("the proxy starts")
}

/// A reqwest client that sends everything through `proxy` and follows redirects.
pub fn client(proxy: &EgressProxy) -> reqwest::Client {
    // reqwest's rustls needs a process-wide provider when two are compiled in (see DESIGN.md).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let proxy = reqwest::Proxy::all(format!("http://{}", proxy.addr())).expect("a proxy URL");
    reqwest::Client::builder()
        .proxy(proxy)
        .build()
        .expect("a client")
}

/// What the test server answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this text body.
    Text(&'static str),
    /// 302 to this location.
    Redirect(String),
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

/// A tiny HTTP/1.1 server on a loopback address that answers every request the same way and
/// records connections and requests.
pub struct Upstream {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Serves `reply` on `ip` (e.g. "127.0.0.1") at a free port.
    pub async fn start(ip: &str, reply: Reply) -> Self {
        let listener = TcpListener::bind((ip, 0))
            .await
            .expect("bind the test server");
        let addr = listener.local_addr().expect("its address");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (counted, recorded) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(stream, reply.clone(), recorded.clone()));
            }
        });
        Self {
            addr,
            connections,
            requests,
            task,
        }
    }

    /// `http://{addr}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many connections reached the server.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: TcpStream, reply: Reply, recorded: Arc<Mutex<Vec<Received>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = header(&head, "content-length")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    recorded
        .lock()
        .expect("not poisoned")
        .push(Received { head, body });
    let response = match reply {
        Reply::Text(text) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        ),
        Reply::Redirect(location) => {
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
        }
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The value of the first header called `name` (case-insensitive) in a raw head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (have, value) = line.split_once(':')?;
        have.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Sends `request` to the proxy on a raw connection and returns everything it answers.
pub async fn raw_exchange(proxy: &EgressProxy, request: &str) -> String {
    let mut stream = TcpStream::connect(proxy.addr())
        .await
        .expect("connect to the proxy");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}
