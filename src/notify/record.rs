//! Attempts recorded together: every delivery that finishes an attempt hands its outcome to
//! one writer task per process and waits until it is written, so a delivery's row is up to
//! date before its job's outcome is acknowledged, as when each wrote its own. Whatever
//! arrives while a statement runs goes in the next one: under load one statement and one
//! commit carry many attempts, and alone an attempt waits for nobody.

use std::sync::{Arc, OnceLock};

use anyhow::anyhow;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::store::outbox::{self, Attempted};

/// Most attempts written by one statement.
const BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(), Arc<anyhow::Error>>>;

/// The handle deliveries record their attempts through.
pub struct Recorder {
    pool: PgPool,
    /// To the writer task, started by the first attempt (on the runtime that runs the jobs);
    /// it ends when the recorder is dropped and what was sent is written.
    tx: OnceLock<mpsc::UnboundedSender<(Attempted, Reply)>>,
}

impl Recorder {
    /// A recorder writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            tx: OnceLock::new(),
        }
    }

    /// Record one attempt; returns once it is written (or writing it failed).
    pub async fn record(&self, attempt: Attempted) -> anyhow::Result<()> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write(self.pool.clone(), rx));
            tx
        });
        let (reply, written) = oneshot::channel();
        tx.send((attempt, reply))
            .map_err(|_| anyhow!("the delivery recorder has stopped"))?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow!("{e:#}")),
            Err(_) => Err(anyhow!("the delivery recorder stopped before writing")),
        }
    }
}

async fn write(pool: PgPool, mut rx: mpsc::UnboundedReceiver<(Attempted, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (attempts, replies): (Vec<Attempted>, Vec<Reply>) = batch.into_iter().unzip();
        let result = outbox::record_attempts(&pool, &attempts)
            .await
            .map_err(Arc::new);
        for reply in replies {
            // A delivery that stopped waiting (its job was cancelled) needs no answer.
            let _ = reply.send(result.clone());
        }
    }
}
