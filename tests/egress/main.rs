//! Egress proxy tests: real loopback servers reached through the real proxy by reqwest and by
//! hand-written requests.

mod helpers;
mod proxy;
mod tunnel;
