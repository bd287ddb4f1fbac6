//! The engine's connections to PostgreSQL over TCP send each query at once, and the pool
//! checks a connection before handing it out only when it sat idle long enough to have broken.
//!
//! Regression guard: sqlx 0.9.0 stopped setting TCP_NODELAY, so every small query could wait
//! 40–100 ms on Nagle's algorithm and the server's delayed ACK; lease extensions then came too
//! late and live jobs were rescued. Checked on the socket itself, not by timing.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::sys::socket::{SockaddrStorage, getpeername, getsockname, getsockopt, sockopt};
use sqlx::{Connection, PgPool};
use workhorse::config::DatabaseConfig;

fn port_of(addr: &SockaddrStorage) -> Option<u16> {
    (addr.as_sockaddr_in().map(|a| a.port())).or_else(|| addr.as_sockaddr_in6().map(|a| a.port()))
}

/// The TCP_NODELAY flag of this process's socket from local port `local` to port `remote`,
/// if there is one. Other tests open connections at the same time (one may be between its
/// connect and its setsockopt), so only the sockets named by their local port are read.
fn nodelay_of_socket(local: u16, remote: u16) -> Option<bool> {
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
        // SAFETY: the descriptor is open (just listed) and only borrowed for three syscalls;
        // a socket closing meanwhile makes them fail, which is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let (Ok(me), Ok(peer)) = (
            getsockname::<SockaddrStorage>(fd.as_raw_fd()),
            getpeername::<SockaddrStorage>(fd.as_raw_fd()),
        ) else {
            continue;
        };
        if port_of(&me) == Some(local) && port_of(&peer) == Some(remote) {
            return getsockopt(&fd, sockopt::TcpNoDelay).ok();
        }
    }
    None
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests")
}

fn tcp_address(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    // A URL with a host= socket directory or no host at all goes over the Unix socket.
    if parsed.query_pairs().any(|(k, _)| k == "host") || parsed.host_str().is_none() {
        return None;
    }
    Some((
        parsed.host_str()?.to_string(),
        parsed.port().unwrap_or(5432),
    ))
}

#[sqlx::test]
async fn the_daemons_pool_sends_queries_without_nagle_delay(_pool: PgPool) {
    let url = database_url();
    let Some((host, port)) = tcp_address(&url) else {
        eprintln!("DATABASE_URL is not TCP; nothing to check");
        return;
    };
    let pool = workhorse::store::connect_lazy(&url, &DatabaseConfig::default()).unwrap();
    let mut flags = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut conn = pool.acquire().await.unwrap();
        conn.ping().await.unwrap();
        // The server names the client's end of this very connection.
        let local: i32 = sqlx::query_scalar("SELECT inet_client_port()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let local = u16::try_from(local).unwrap();
        flags.push(nodelay_of_socket(local, port));
        conns.push(conn);
    }

    // The reader sees an unset flag too: a plain socket to the same server reads false.
    let plain = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .unwrap();
    let plain_port = plain.local_addr().unwrap().port();

    assert!(
        flags.iter().all(|on| *on == Some(true)),
        "every connection to PostgreSQL must set TCP_NODELAY: {flags:?}"
    );
    assert_eq!(nodelay_of_socket(plain_port, port), Some(false));
}

/// The backend serving a connection the pool hands out.
async fn backend_of(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .expect("a query through the pool")
}

#[sqlx::test]
async fn a_connection_that_broke_while_idle_is_replaced_before_its_next_query(admin: PgPool) {
    // One connection, so the pool can only hand out that one (or a new one).
    let config = DatabaseConfig {
        max_connections: 1,
        ..DatabaseConfig::default()
    };
    let pool = workhorse::store::connect_lazy(&database_url(), &config).unwrap();
    let first = backend_of(&pool).await;
    // Used again at once: the same connection, not pinged first (sqlx checked it when it
    // took it back).
    assert_eq!(backend_of(&pool).await, first);

    // The server ends it while it sits in the pool, as a restart would.
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(ended);
    tokio::time::sleep(workhorse::store::CHECK_IDLE_AFTER + std::time::Duration::from_millis(200))
        .await;

    // Idle past the check's threshold: the ping finds it broken and the query gets a new one.
    let second = backend_of(&pool).await;
    assert_ne!(second, first);
}
