//! The top layer: the one assembly of the appliance and the commands that run it. Nothing
//! below imports from here (only `main.rs` does).
//!
//! | file | concern |
//! |---|---|
//! | `appliance.rs` | [`Appliance`]: every part started in order, run until a shutdown future, stopped in order; used by `run`, `demo` and the tests |
//! | `start.rs` | the one start-failure policy ("start it, or show the trouble"); the board's GPIO and I2C opened under it |
//! | `core.rs` | [`Core`]: the store, device id, keys, client states and counters every command shares |
//! | `cloud_link.rs` | sign-in, subscription, recognition and consumer as one restartable unit |
//! | `call_events.rs` | the emergency-event subscriptions' keeper and app-only token, from the settings |
//! | `error.rs` | [`AppError`]: why a start or a command failed |
//! | `fallback.rs` | which configuration `beacon run` starts with when the file does not load (the last good one, or the safe defaults) |
//! | `signals.rs` | SIGTERM / Ctrl-C as a future |
//! | `login.rs`, `replay.rs`, `demo.rs` | `beacon login`, `beacon replay`, `beacon demo` |
//! | `fleet_join.rs` | `beacon fleet-join`: the fleet's secrets fetched from another box over pinned HTTPS |

mod appliance;
mod call_events;
mod cloud_link;
mod core;
pub mod demo;
mod error;
pub mod fallback;
mod fleet_join;
mod login;
mod replay;
mod signals;
mod start;

pub use self::core::{load_keys, save_key, Core};
pub use appliance::{Appliance, Board, Feed, Options};
pub use error::AppError;
pub use fleet_join::{fleet_join, JoinError};
pub use login::login;
pub use replay::{replay, CallBrief, ReplaySummary};
pub use signals::shutdown_signal;

use crate::config::Config;

/// `beacon run`: the appliance on the configured board, fed by the cloud, until SIGTERM or
/// Ctrl-C. The stop handlers are installed first, so a stop asked for while it is still
/// starting is kept and acted on once it has started.
pub async fn run(config: Config) -> Result<(), AppError> {
    run_with_troubles(config, Vec::new(), None).await
}

/// `beacon run --config <path>`: [`run`] with the configuration [`fallback::choose`] picks —
/// a file that does not load starts the last good configuration (or the safe defaults) with
/// the error as a trouble, instead of ending the process.
pub async fn run_from_file(path: &std::path::Path) -> Result<(), AppError> {
    let chosen = fallback::choose(path);
    run_with_troubles(chosen.config, chosen.troubles, chosen.good_text).await
}

async fn run_with_troubles(
    config: Config,
    troubles: Vec<(String, String)>,
    good_text: Option<String>,
) -> Result<(), AppError> {
    let shutdown = shutdown_signal();
    let mut core = Core::open(&config)?;
    core.start_troubles.extend(troubles);
    // The CAs every TLS client trusts; a CA file that cannot be read is a trouble, and the
    // clients keep the system's store.
    if let Err(e) = crate::trust::install(&config.tls) {
        tracing::error!(error = %e, "the configured CA certificates cannot be used");
        core.start_troubles.push((
            fallback::CONFIG_COMPONENT.to_string(),
            format!("the trusted CA files of [tls] cannot be used: {e}"),
        ));
    }
    if let Some(text) = good_text {
        fallback::keep_last_good(&config.data_dir, &text);
    }
    Appliance::start(config, core, Options::service())
        .await?
        .run_until(shutdown)
        .await
}
