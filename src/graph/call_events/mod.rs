//! Graph emergency call events, the second source: the cloud side that makes Graph deliver
//! them into the Event Hub (graph-teams.md B.10). The pure parts of the subscription and the
//! decoding of an event are in [`super::emergency_events`].
//!
//! * [`config`] — the `[call_events]` section: the emergency calling policies to watch, the
//!   credential (certificate by default, or the client secret), an optional second hub.
//! * [`certificate`] — the appliance's own certificate for the app registration and the
//!   signed client assertion.
//! * [`app_token`] — the app-only (client-credentials) token, its `roles`, consent in words.
//! * [`keeper`] — one subscription per policy: create, adopt on 409, renew at half-life.
//!
//! With no policy configured nothing here runs: the chat path alone, as before.

pub mod app_token;
pub mod certificate;
pub mod config;
pub mod keeper;

pub use app_token::{AppCredential, AppToken, AppTokenSettings, AppTokenStatus};
pub use certificate::AppCertificate;
pub use config::{CallEventsConfig, CredentialKind};
pub use keeper::{CallEventKeeper, CallEventSettings, CallEventsStatus, PolicyStatus};
