//! The engine's connections to PostgreSQL over TCP send each query at once.
//!
//! Regression guard: sqlx 0.9.0 stopped setting TCP_NODELAY, so every small query could wait
//! 40–100 ms on Nagle's algorithm and the server's delayed ACK; lease extensions then came too
//! late and live jobs were rescued. Checked on the socket itself, not by timing.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::sys::socket::{SockaddrStorage, getpeername, getsockopt, sockopt};
use sqlx::{Connection, PgPool};
use workhorse::config::DatabaseConfig;

/// The TCP_NODELAY flag of every socket of this process connected to `port`.
fn nodelay_of_sockets_to(port: u16) -> Vec<bool> {
    let mut flags = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("listing /proc/self/fd") {
        let Ok(entry) = entry else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        // SAFETY: the descriptor is open (just listed) and only borrowed for two syscalls; a
        // connection closing meanwhile makes them fail, which is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let Ok(peer) = getpeername::<SockaddrStorage>(fd.as_raw_fd()) else {
            continue;
        };
        let peer_port = peer
            .as_sockaddr_in()
            .map(|a| a.port())
            .or_else(|| peer.as_sockaddr_in6().map(|a| a.port()));
        if peer_port == Some(port)
            && let Ok(on) = getsockopt(&fd, sockopt::TcpNoDelay)
        {
            flags.push(on);
        }
    }
    flags
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests")
}

fn tcp_port(url: &str) -> Option<u16> {
    let parsed = url::Url::parse(url).ok()?;
    // A URL with a host= socket directory or no host at all goes over the Unix socket.
    if parsed.query_pairs().any(|(k, _)| k == "host") || parsed.host_str().is_none() {
        return None;
    }
    Some(parsed.port().unwrap_or(5432))
}

#[sqlx::test]
async fn the_daemons_pool_sends_queries_without_nagle_delay(_pool: PgPool) {
    let url = database_url();
    let Some(port) = tcp_port(&url) else {
        eprintln!("DATABASE_URL is not TCP; nothing to check");
        return;
    };
    let pool = workhorse::store::connect_lazy(&url, &DatabaseConfig::default()).unwrap();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut conn = pool.acquire().await.unwrap();
        conn.ping().await.unwrap();
        conns.push(conn);
    }

    let flags = nodelay_of_sockets_to(port);
    assert!(
        flags.len() >= conns.len(),
        "found {} sockets to port {port}, expected at least {}",
        flags.len(),
        conns.len()
    );
    assert!(
        flags.iter().all(|on| *on),
        "every connection to PostgreSQL must set TCP_NODELAY: {flags:?}"
    );
}
