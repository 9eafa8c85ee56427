//! `/setup` (admins only): the setup wizard — OAuth settings, Event Hub settings with a live
//! connection test, the service account's device-code sign-in (code, address, countdown,
//! result), the subscription (summary, create, result in words) and a test alarm. Each form
//! posts to `/setup/<step>`; a step whose predecessors are not done is refused (409). Secrets
//! are write-only: the page says whether one is set, never its value.
//!
//! Saving OAuth or Event Hub settings, a finished sign-in and a created subscription restart
//! the cloud link so the appliance runs with them at once.
//!
//! | file | concern |
//! |---|---|
//! | `render.rs` | the page: every step's state, what was typed, the last outcomes |
//! | `steps.rs` | the checks every form starts with; the OAuth, sign-in, subscription and test-alarm forms |
//! | `hub_test.rs` | the Event Hub form: the live connection test before anything is saved |

mod hub_test;
mod render;
mod steps;

pub use hub_test::event_hub;
pub use render::show;
pub use steps::{cancel_sign_in, oauth, sign_in, subscription, test_alarm};
