//! `[web]`: where the console listens, its certificate, the map tiles, and how long sessions
//! and login attempts last. The section's presence turns the console on.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[web]` of the configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Address of the console (HTTPS unless `https = false`).
    pub listen: SocketAddr,
    /// Serve HTTPS (default). Plain HTTP is only accepted on a loopback address (tests, demo).
    pub https: bool,
    /// Where plain HTTP is answered with a redirect to the console (`None`: nowhere).
    pub redirect_http: Option<SocketAddr>,
    /// PEM certificate chain to serve instead of the self-signed one made on first start.
    pub certificate: Option<PathBuf>,
    /// PEM private key of `certificate`.
    pub private_key: Option<PathBuf>,
    /// Map tiles for the call map, `{z}/{x}/{y}` placeholders (Leaflet's syntax).
    pub tiles_url: String,
    /// Attribution shown on the map (the tile provider's terms).
    pub tiles_attribution: String,
    /// How long a login lasts without activity.
    pub session_minutes: u32,
    /// Failed logins allowed per client address (IPv6: per /64) per minute.
    pub login_attempts_per_minute: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 443)),
            https: true,
            redirect_http: None,
            certificate: None,
            private_key: None,
            tiles_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
            tiles_attribution: "© OpenStreetMap contributors".into(),
            session_minutes: 12 * 60,
            login_attempts_per_minute: 5,
        }
    }
}

impl WebConfig {
    /// The console's address as a person on the network types it: `https://beacon.local`,
    /// with the port when it is not the scheme's default.
    pub fn console_url(&self) -> String {
        let (scheme, default_port) = if self.https {
            ("https", 443)
        } else {
            ("http", 80)
        };
        match self.listen.port() {
            port if port == default_port => format!("{scheme}://beacon.local"),
            port => format!("{scheme}://beacon.local:{port}"),
        }
    }

    /// The certificate file the console serves (`None` over plain HTTP): the configured one,
    /// or the self-signed one kept in `<data_dir>/web/` (made and renewed by the console).
    pub fn certificate_file(&self, data_dir: &std::path::Path) -> Option<std::path::PathBuf> {
        if !self.https {
            return None;
        }
        Some(match &self.certificate {
            Some(configured) => configured.clone(),
            None => super::tls::self_signed_files(data_dir).0,
        })
    }

    /// Values that parse but cannot work. Returns (key, reason).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.https && !self.listen.ip().is_loopback() {
            return Err((
                "web.https",
                "plain HTTP is only allowed on a loopback address (127.0.0.1, ::1); the console carries passwords".into(),
            ));
        }
        if self.certificate.is_some() != self.private_key.is_some() {
            return Err((
                "web.certificate",
                "set both web.certificate and web.private_key, or neither".into(),
            ));
        }
        for (key, path) in [
            ("web.certificate", &self.certificate),
            ("web.private_key", &self.private_key),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return Err((key, format!("no such file: {}", path.display())));
                }
            }
        }
        let tiles = &self.tiles_url;
        if !(tiles.starts_with("https://") || tiles.starts_with("http://"))
            || !tiles.contains("{z}")
            || !tiles.contains("{x}")
            || !tiles.contains("{y}")
        {
            return Err((
                "web.tiles_url",
                "expected an http(s) URL with {z}, {x} and {y}".into(),
            ));
        }
        if self.session_minutes == 0 {
            return Err(("web.session_minutes", "must be at least 1".into()));
        }
        if self.login_attempts_per_minute == 0 {
            return Err(("web.login_attempts_per_minute", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The tiles' origin (`https://host[:port]`), which the page's CSP must allow for images.
    pub fn tiles_origin(&self) -> String {
        let rest = self
            .tiles_url
            .split_once("://")
            .map(|(scheme, rest)| (scheme, rest.split('/').next().unwrap_or("")));
        match rest {
            // Leaflet's `{s}` subdomains become a CSP wildcard.
            Some((scheme, host)) => format!("{scheme}://{}", host.replace("{s}", "*")),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_url_names_the_port_only_when_it_is_not_the_default() {
        let on = |https: bool, listen: &str| WebConfig {
            https,
            listen: listen.parse().expect("address"),
            ..WebConfig::default()
        };
        assert_eq!(
            on(true, "0.0.0.0:443").console_url(),
            "https://beacon.local"
        );
        assert_eq!(
            on(true, "0.0.0.0:8443").console_url(),
            "https://beacon.local:8443"
        );
        assert_eq!(
            on(false, "127.0.0.1:80").console_url(),
            "http://beacon.local"
        );
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let mut config = WebConfig {
            https: false,
            ..WebConfig::default()
        };
        assert_eq!(config.validate().map_err(|e| e.0), Err("web.https"));
        config.listen = "127.0.0.1:8080".parse().unwrap_or(config.listen);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn tiles_origin_is_scheme_and_host() {
        let config = WebConfig::default();
        assert_eq!(config.tiles_origin(), "https://tile.openstreetmap.org");
        let sub = WebConfig {
            tiles_url: "https://{s}.tile.example.org:8443/{z}/{x}/{y}.png".into(),
            ..WebConfig::default()
        };
        assert_eq!(sub.tiles_origin(), "https://*.tile.example.org:8443");
    }
}
