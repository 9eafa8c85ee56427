//! Microsoft Graph: the `[graph]` section ([`config`]), notification decoding, rich-notification
//! crypto, the fleet's shared secrets, client-state checks, the HTTP client, sign-in (device
//! code, refresh), the subscription keeper, and the reconciliation poll that reads the chats
//! behind push.

pub mod aadsts;
pub mod account;
pub mod auth;
pub mod call_events;
pub mod client;
pub mod client_state;
pub mod config;
pub mod crypto;
pub mod emergency_events;
pub mod fleet;
pub mod keys;
pub mod notification;
pub mod reconcile;
pub mod resync;
pub mod retry;
pub mod schedule;
pub mod subscription;
pub mod tokens;
