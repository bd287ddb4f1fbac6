//! Process lifecycle: SIGTERM/SIGINT start a graceful shutdown; systemd hears `READY=1`,
//! `WATCHDOG=1` and `STOPPING=1` over `NOTIFY_SOCKET` (nothing is sent when it is unset).

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Cancel `shutdown` on the first SIGTERM or SIGINT.
pub fn shutdown_on_signals(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = shutdown.cancelled() => return,
        };
        tracing::info!(signal = name, "shutdown requested");
        shutdown.cancel();
    });
    Ok(())
}

/// Tell systemd the daemon is ready, and keep its watchdog fed while `shutdown` is not cancelled.
pub fn notify_ready(shutdown: &CancellationToken) {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
    if let Some(period) = sd_notify::watchdog_enabled() {
        // Half the period, as sd_watchdog_enabled(3) recommends.
        let interval = period / 2;
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => send(&[NotifyState::Watchdog]),
                    _ = shutdown.cancelled() => break,
                }
            }
        });
    }
}

/// Tell systemd the daemon is stopping.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}
