//! Push notifications: each provider's sender against a local server playing the provider, and
//! the daemon's outbound checks (egress policy, sanitised errors, the channel cap).

mod daemon;
mod fcm;
mod helpers;
mod outbound;
mod push_service;
mod webpush;
