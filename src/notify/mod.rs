//! Push notifications: one sender per provider.

pub mod fcm;
pub mod job;
pub mod webhook;
pub mod webpush;
