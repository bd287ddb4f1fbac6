//! The webhook receiver of `bench_notify`: a poem server on loopback that answers 200 at once
//! and counts the requests it got.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, handler, http::StatusCode};

/// A webhook receiver on loopback that answers 200 at once and counts requests.
pub struct Receiver {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
async fn receive(requests: Data<&Arc<AtomicU64>>) -> StatusCode {
    requests.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let requests = Arc::new(AtomicU64::new(0));
        let app = Route::new()
            .at("/hook", poem::post(receive))
            .data(requests.clone());
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .context("binding the receiver")?;
        let addr = *(acceptor.local_addr().first())
            .and_then(|a| a.as_socket_addr())
            .context("reading the receiver's address")?;
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Ok(Self {
            addr,
            requests,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}
