//! Egress tests: real loopback servers reached through the real proxy by reqwest and by
//! hand-written requests, and through the outbound client deliveries use.

mod client;
mod helpers;
mod proxy;
mod tunnel;
