//! The operator CLI: each command run as the built binary against a real database with no
//! daemon (one test with a daemon running), as tables and as `--json`.

mod deliveries;
mod docs;
mod helpers;
mod jobs;
mod schedules;
mod status;
mod users;
