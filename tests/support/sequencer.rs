//! The stream's sequencer for tests that run the job engine without the daemon: enqueues send
//! no NOTIFY of their own, the sequencer wakes the workers once it numbers the new jobs
//! (docs/job-engine.md, "Waking workers"), as it does in every daemon. Included with
//! `#[path]` by the test binaries that start an `Engine` themselves.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use workhorse::config::EventsConfig;
use workhorse::stream::Hub;

/// Start a stream hub (sequencer, listener, fetcher) on `pool`'s database, on a pool of its
/// own so the test's connections stay the test's. It runs until the test's runtime ends.
pub fn start(pool: &PgPool) {
    let options = pool.connect_options().as_ref().clone();
    let own = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(options);
    Hub::new(own, EventsConfig::default()).start(&CancellationToken::new());
}
