//! Push notifications: one sender per provider, and the `notify` job that carries out each
//! delivery (webhooks and Web Push through the shared egress-checked client).

mod attempt;
pub mod fcm;
pub mod job;
mod record;
pub mod webhook;
pub mod webpush;
