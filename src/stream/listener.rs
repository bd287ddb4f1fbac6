//! The process's listener for the stream: new numbered events wake the fetcher; summary text
//! pieces go straight to the hub's token broadcast. A lost connection may have lost
//! notifications, so the fetcher is woken after every reconnect (text pieces are best effort).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::store::stream::{CHANNEL, TOKENS_CHANNEL};

/// Listen until `stop`, reconnecting with a growing pause.
pub(super) async fn run(hub: Arc<Inner>, stop: CancellationToken) {
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        let listener = async {
            let mut l = PgListener::connect_with(&hub.pool).await?;
            l.listen_all([CHANNEL, TOKENS_CHANNEL]).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(50) {
                    tracing::warn!(error = %e, failures,
                        "listening for stream events failed; polling meanwhile");
                }
                let wait = Duration::from_millis(100 << failures.min(4));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = stop.cancelled() => return,
                }
            }
        };
        failures = 0;
        hub.fetch.notify_one();
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = stop.cancelled() => return,
            };
            match next {
                Ok(Some(n)) if n.channel() == TOKENS_CHANNEL => {
                    match serde_json::from_str::<Value>(n.payload()) {
                        Ok(piece) => {
                            let _ = hub.tokens.send(Arc::new(piece));
                        }
                        Err(e) => tracing::debug!(error = %e, "a summary piece that is not JSON"),
                    }
                }
                Ok(Some(n)) => match n.payload().parse::<i64>() {
                    Ok(last) => hub.announce(last),
                    Err(_) => hub.fetch.notify_one(),
                },
                Ok(None) => hub.fetch.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "the stream's listener lost its connection");
                    hub.fetch.notify_one();
                    break;
                }
            }
        }
    }
}
