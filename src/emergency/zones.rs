//! Local site filter: does THIS appliance sound its alarm for a call, and for which zone?
//!
//! Zones come from `[[emergency.zones]]` (name + case-insensitive substring patterns matched
//! against the call's site, location text and address). No zones configured: every call alarms.
//! A call with no location at all alarms unless `alarm_when_location_unknown = false` (fail loud).
//! Recording the call happens regardless; that is the caller's job.

use serde::{Deserialize, Serialize};

use super::model::EmergencyCall;
use super::textnorm::normalize;

/// One `[[emergency.zones]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Name shown on the display and recorded with the call.
    pub name: String,
    /// Case-insensitive substrings of the site / location text / address.
    pub patterns: Vec<String>,
}

/// Why a zone entry cannot be used (reported as `emergency.zones[index]: problem`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZoneError {
    pub index: usize,
    pub problem: String,
}

/// Compiled zones.
#[derive(Debug, Clone, Default)]
pub struct ZoneRules {
    zones: Vec<(String, Vec<String>)>,
    alarm_when_location_unknown: bool,
}

/// Outcome of the site filter for one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneDecision {
    /// Whether the local outputs (strobe, siren, display) fire.
    pub alarm_locally: bool,
    /// The first zone (in config order) whose pattern matched.
    pub zone: Option<String>,
    pub reason: ZoneReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneReason {
    /// No zones configured: every call is local.
    NoFilter,
    Matched,
    /// The call has a location that matches no zone.
    NoMatch,
    /// The call carries no location to match.
    LocationUnknown,
}

impl ZoneRules {
    pub(crate) fn compile(
        zones: &[ZoneConfig],
        alarm_when_location_unknown: bool,
    ) -> Result<ZoneRules, ZoneError> {
        let mut compiled: Vec<(String, Vec<String>)> = Vec::with_capacity(zones.len());
        for (index, zone) in zones.iter().enumerate() {
            let problem = |problem: &str| ZoneError {
                index,
                problem: problem.to_string(),
            };
            let name = zone.name.trim();
            if name.is_empty() {
                return Err(problem("name is empty"));
            }
            if compiled.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(problem(&format!("zone name {name:?} is used twice")));
            }
            if zone.patterns.is_empty() {
                return Err(problem("patterns is empty"));
            }
            let patterns: Vec<String> = zone.patterns.iter().map(|p| normalize(p)).collect();
            if patterns.iter().any(String::is_empty) {
                return Err(problem("a pattern is empty"));
            }
            compiled.push((name.to_string(), patterns));
        }
        Ok(ZoneRules {
            zones: compiled,
            alarm_when_location_unknown,
        })
    }

    /// Whether any zone is configured.
    pub fn is_filtering(&self) -> bool {
        !self.zones.is_empty()
    }

    /// Decides whether this appliance alarms locally for `call`.
    pub fn decide(&self, call: &EmergencyCall) -> ZoneDecision {
        let decision = |alarm_locally, zone, reason| ZoneDecision {
            alarm_locally,
            zone,
            reason,
        };
        if self.zones.is_empty() {
            return decision(true, None, ZoneReason::NoFilter);
        }
        let haystack = location_haystack(call);
        if haystack.is_empty() {
            return decision(
                self.alarm_when_location_unknown,
                None,
                ZoneReason::LocationUnknown,
            );
        }
        match self
            .zones
            .iter()
            .find(|(_, patterns)| patterns.iter().any(|p| haystack.contains(p.as_str())))
        {
            Some((name, _)) => decision(true, Some(name.clone()), ZoneReason::Matched),
            None => decision(false, None, ZoneReason::NoMatch),
        }
    }
}

/// Site, location text and address parts, normalised, one per line.
fn location_haystack(call: &EmergencyCall) -> String {
    let loc = &call.location;
    let address = loc.address.as_ref();
    let parts = [
        loc.site.as_deref(),
        loc.text.as_deref(),
        address.and_then(|a| a.street.as_deref()),
        address.and_then(|a| a.city.as_deref()),
        address.and_then(|a| a.state.as_deref()),
        address.and_then(|a| a.postal_code.as_deref()),
        address.and_then(|a| a.country.as_deref()),
    ];
    parts
        .into_iter()
        .flatten()
        .map(normalize)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emergency::{Address, Location};

    fn zones(alarm_when_unknown: bool) -> ZoneRules {
        let cfg = [
            ZoneConfig {
                name: "HQ".into(),
                patterns: vec!["725 Example Street".into(), "building  7".into()],
            },
            ZoneConfig {
                name: "Lab".into(),
                patterns: vec!["Lab".into()],
            },
        ];
        ZoneRules::compile(&cfg, alarm_when_unknown).unwrap_or_default()
    }

    fn call(location: Location) -> EmergencyCall {
        EmergencyCall {
            location,
            ..EmergencyCall::default()
        }
    }

    #[test]
    fn matches_case_insensitively_on_text_site_or_address() {
        let z = zones(true);
        let by_text = call(Location {
            text: Some("725 EXAMPLE STREET, Floor 4".into()),
            ..Location::default()
        });
        assert_eq!(z.decide(&by_text).zone.as_deref(), Some("HQ"));
        let by_site = call(Location {
            site: Some("Building 7 east".into()),
            ..Location::default()
        });
        assert!(z.decide(&by_site).alarm_locally);
        let by_address = call(Location {
            address: Some(Address {
                street: Some("1 Lab Road".into()),
                ..Address::default()
            }),
            ..Location::default()
        });
        assert_eq!(z.decide(&by_address).zone.as_deref(), Some("Lab"));
    }

    #[test]
    fn other_sites_do_not_alarm_and_unknown_location_follows_config() {
        let elsewhere = call(Location {
            text: Some("10 Downing Street".into()),
            ..Location::default()
        });
        let d = zones(true).decide(&elsewhere);
        assert_eq!((d.alarm_locally, d.reason), (false, ZoneReason::NoMatch));
        let unknown = call(Location::default());
        assert!(zones(true).decide(&unknown).alarm_locally);
        assert!(!zones(false).decide(&unknown).alarm_locally);
    }

    #[test]
    fn no_zones_means_every_call_alarms() {
        let d = ZoneRules::default().decide(&call(Location::default()));
        assert_eq!(
            d,
            ZoneDecision {
                alarm_locally: true,
                zone: None,
                reason: ZoneReason::NoFilter
            }
        );
    }

    #[test]
    fn bad_zone_configs_are_rejected() {
        let bad = |name: &str, patterns: Vec<String>| {
            ZoneRules::compile(
                &[ZoneConfig {
                    name: name.into(),
                    patterns,
                }],
                true,
            )
            .is_err()
        };
        assert!(bad(" ", vec!["x".into()]));
        assert!(bad("A", vec![]));
        assert!(bad("A", vec!["  ".into()]));
        let twice = ZoneConfig {
            name: "A".into(),
            patterns: vec!["x".into()],
        };
        assert!(ZoneRules::compile(&[twice.clone(), twice], true).is_err());
    }
}
