//! Times as a person reads them: in the appliance's time zone, with the zone named
//! (`2026-11-29 10:33:50 PST`). The one formatting function for the console, the display and
//! the notifications; records, logs and the API keep UTC (RFC 3339).
//!
//! The zone is the `time_zone` setting (an IANA name such as `America/Los_Angeles`, read from
//! the system's zoneinfo), else the system's own (`TZ`, then `/etc/localtime`), else UTC.
//! [`Zone`] is pure once loaded; [`current`] is the appliance's zone, set at start and from
//! the settings page ([`set_current`]).

use std::sync::{Arc, RwLock};

use chrono::{DateTime, FixedOffset, Offset, Utc};

/// Where the system keeps its zone files (tz-rs looks there too).
const ZONEINFO: &str = "/usr/share/zoneinfo/";

/// A time zone by name, with its rules.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    rules: tz::TimeZone,
}

/// Why a zone name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("not a time zone name like America/Los_Angeles or Europe/Berlin")]
    BadName,
    #[error("no time zone named {0} on this system")]
    Unknown(String),
}

impl Zone {
    /// Coordinated Universal Time.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            rules: tz::TimeZone::utc(),
        }
    }

    /// The zone named `name` (IANA, e.g. `America/Los_Angeles`) from the system's zoneinfo.
    pub fn named(name: &str) -> Result<Zone, ZoneError> {
        let name = name.trim();
        let plausible = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('/')
            && !name
                .split('/')
                .any(|part| part.is_empty() || part.starts_with('.'))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
        if !plausible {
            return Err(ZoneError::BadName);
        }
        if name == "UTC" {
            return Ok(Zone::utc());
        }
        // A name only: never a POSIX rule string (tz-rs would parse "EST5" as one).
        let rules = tz::TimeZone::from_posix_tz(&format!(":{name}"))
            .map_err(|_| ZoneError::Unknown(name.to_string()))?;
        Ok(Zone {
            name: name.to_string(),
            rules,
        })
    }

    /// The system's zone: `TZ` (a name), else `/etc/localtime`, else UTC.
    pub fn system() -> Zone {
        if let Ok(tz) = std::env::var("TZ") {
            if let Ok(zone) = Zone::named(tz.trim_start_matches(':')) {
                return zone;
            }
        }
        let name = std::fs::read_link("/etc/localtime")
            .ok()
            .and_then(|target| {
                let target = target.to_string_lossy().into_owned();
                target
                    .find(ZONEINFO)
                    .map(|at| target[at + ZONEINFO.len()..].to_string())
            });
        match (name, tz::TimeZone::local()) {
            (Some(name), Ok(rules)) => Zone { name, rules },
            (None, Ok(rules)) => Zone {
                name: "system".into(),
                rules,
            },
            _ => Zone::utc(),
        }
    }

    /// The zone's name (`America/Los_Angeles`, `UTC`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `at` in this zone, and the zone's abbreviation then (`PST`, `PDT`, `CET`, `UTC`).
    /// A zone without abbreviations is named by its offset (`+0530`), as `date` does.
    pub fn local(&self, at: DateTime<Utc>) -> (DateTime<FixedOffset>, String) {
        let kind = self.rules.find_local_time_type(at.timestamp()).ok();
        let offset = kind
            .and_then(|kind| FixedOffset::east_opt(kind.ut_offset()))
            .unwrap_or_else(|| Utc.fix());
        let local = at.with_timezone(&offset);
        let abbreviation = match kind.map(tz::LocalTimeType::time_zone_designation) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ if offset.local_minus_utc() == 0 => "UTC".into(),
            _ => local.format("%z").to_string(),
        };
        (local, abbreviation)
    }

    /// `2026-11-29 10:33:50 PST`.
    pub fn format(&self, at: DateTime<Utc>) -> String {
        self.format_with(at, "%Y-%m-%d %H:%M:%S")
    }

    /// `2026-11-29 10:33 PST`.
    pub fn format_minutes(&self, at: DateTime<Utc>) -> String {
        self.format_with(at, "%Y-%m-%d %H:%M")
    }

    /// `10:33 PST`.
    pub fn format_time(&self, at: DateTime<Utc>) -> String {
        self.format_with(at, "%H:%M")
    }

    fn format_with(&self, at: DateTime<Utc>, pattern: &str) -> String {
        let (local, abbreviation) = self.local(at);
        format!("{} {abbreviation}", local.format(pattern))
    }
}

/// The store key (`settings` tree) of the zone chosen on the console's settings page.
pub const SAVED_KEY: &str = "console/time_zone";

/// The zone chosen: the settings page's (`saved`), else the file's `time_zone`; `None` when
/// neither names a zone this system knows (the system's zone then).
pub fn chosen(saved: Option<&str>, file: Option<&str>) -> Option<Zone> {
    saved
        .and_then(|name| Zone::named(name).ok())
        .or_else(|| file.and_then(|name| Zone::named(name).ok()))
}

static CURRENT: RwLock<Option<Arc<Zone>>> = RwLock::new(None);

/// The appliance's zone (the system's until [`set_current`]).
pub fn current() -> Arc<Zone> {
    if let Some(zone) = CURRENT.read().ok().and_then(|z| z.clone()) {
        return zone;
    }
    let zone = Arc::new(Zone::system());
    if let Ok(mut slot) = CURRENT.write() {
        slot.get_or_insert_with(|| zone.clone());
    }
    zone
}

/// Makes `zone` the appliance's zone from now on.
pub fn set_current(zone: Zone) {
    if let Ok(mut slot) = CURRENT.write() {
        *slot = Some(Arc::new(zone));
    }
}

/// `at` as [`Zone::format`] shows it in the appliance's zone.
pub fn shown(at: DateTime<Utc>) -> String {
    current().format(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s)
            .single()
            .expect("valid")
    }

    #[test]
    fn a_time_is_shown_in_the_zone_with_its_abbreviation_winter_and_summer() {
        let seattle = Zone::named("America/Los_Angeles").expect("system zoneinfo");
        assert_eq!(
            seattle.format(at(2026, 11, 29, 18, 33, 50)),
            "2026-11-29 10:33:50 PST"
        );
        assert_eq!(
            seattle.format(at(2026, 7, 1, 18, 33, 50)),
            "2026-07-01 11:33:50 PDT"
        );
        let berlin = Zone::named("Europe/Berlin").expect("system zoneinfo");
        assert_eq!(
            berlin.format_minutes(at(2026, 11, 29, 18, 33, 0)),
            "2026-11-29 19:33 CET"
        );
        assert_eq!(
            Zone::utc().format_time(at(2026, 11, 29, 18, 33, 0)),
            "18:33 UTC"
        );
    }

    #[test]
    fn the_settings_page_choice_wins_over_the_file() {
        let name = |zone: Option<Zone>| zone.map(|z| z.name().to_string());
        assert_eq!(
            name(chosen(Some("Europe/Berlin"), Some("America/Los_Angeles"))),
            Some("Europe/Berlin".into())
        );
        assert_eq!(
            name(chosen(None, Some("America/Los_Angeles"))),
            Some("America/Los_Angeles".into())
        );
        assert_eq!(name(chosen(None, None)), None);
    }

    #[test]
    fn a_day_boundary_moves_with_the_zone() {
        let seattle = Zone::named("America/Los_Angeles").expect("zone");
        let (local, _) = seattle.local(at(2026, 11, 30, 2, 0, 0));
        assert_eq!(
            local.format("%Y-%m-%d %H:%M").to_string(),
            "2026-11-29 18:00"
        );
    }

    #[test]
    fn names_that_are_not_zones_or_reach_outside_zoneinfo_are_refused() {
        assert_eq!(
            Zone::named("Mars/Olympus").err(),
            Some(ZoneError::Unknown("Mars/Olympus".into()))
        );
        for bad in [
            "",
            "../../etc/passwd",
            "/etc/localtime",
            "America/../../etc",
            "EST5EDT,M3.2.0",
        ] {
            assert_eq!(Zone::named(bad).err(), Some(ZoneError::BadName), "{bad}");
        }
        assert_eq!(
            Zone::named("UTC").map(|z| z.name().to_string()),
            Ok("UTC".into())
        );
    }
}
