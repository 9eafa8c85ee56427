//! Microsoft Graph: notification decoding, rich-notification crypto, client-state checks
//! (and, in later work, the HTTP client, sign-in and the subscription keeper).

pub mod aadsts;
pub mod account;
pub mod auth;
pub mod client;
pub mod client_state;
pub mod crypto;
pub mod notification;
pub mod resync;
pub mod retry;
pub mod schedule;
pub mod subscription;
pub mod tokens;
