//! `beacon fleet-join`: a new box joins the fleet of a box already running (issue 17), with
//! the one-time code shown on that box's settings page. The joining itself (pinned HTTPS, the
//! code, storing the secrets 0600 and the members) is [`crate::outputs::peers::joining`],
//! shared with the settings page of a running box; here the service must be stopped (it holds
//! the store). Its own keys are replaced by the fleet's.

use super::{AppError, Core};
use crate::config::Config;
use crate::outputs::peers::joining::{self, Joiner};

pub use crate::outputs::peers::joining::JoinError;

/// See the module docs. Returns the fleet's id.
pub async fn fleet_join(config: Config, from: &str, code: &str) -> Result<String, JoinError> {
    let core = Core::open(&config).map_err(|e: AppError| JoinError::Open(e.to_string()))?;
    let joiner = Joiner {
        name: core.device_id.clone(),
        console: console(&config),
    };
    joining::join(&core.store, from, code, &joiner).await
}

/// This box's console port and certificate SHA-256, when it serves HTTPS (the certificate is
/// made now if it does not exist yet, as the service would at start).
fn console(config: &Config) -> Option<(u16, [u8; 32])> {
    // Port 0 (any free port) names no console another box could reach.
    let web = config
        .web
        .as_ref()
        .filter(|w| w.https && w.listen.port() != 0)?;
    let configured = web.certificate.as_deref().zip(web.private_key.as_deref());
    let (cert, _) = crate::web::tls::certificate_files(configured, &config.data_dir)
        .map_err(
            |e| tracing::warn!(error = %e, "fleet join: no console certificate to tell the fleet"),
        )
        .ok()?;
    let sha256 = crate::outputs::peers::pinned::certificate_sha256(&cert)?;
    Some((web.listen.port(), sha256))
}
