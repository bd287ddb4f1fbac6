//! Push notifications: each provider's sender against a local server playing the provider.

mod daemon;
mod fcm;
mod push_service;
mod webpush;
