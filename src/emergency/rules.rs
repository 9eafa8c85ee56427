//! Configuration of the classifier (`RulesConfig`, the `[emergency]` TOML section) and its
//! compiled form (`Rules`): phrases normalised once, dial strings validated, zones compiled,
//! regexes built once so that classifying a message never compiles anything.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::address::AddressPatterns;
use super::cues::Cues;
use super::textnorm::normalize;
use super::zones::{ZoneConfig, ZoneError, ZoneRules};

/// The `[emergency]` section of the appliance configuration.
///
/// Every field is optional; a missing field takes the built-in default, an unknown field is an
/// error. Example with the defaults shortened:
///
/// ```toml
/// [emergency]
/// # Text that marks the Teams notification (case-insensitive, any whitespace/apostrophe).
/// phrases = ["has placed an Emergency Call", "placed an emergency call", "hat einen Notruf"]
/// # Weaker words: in an important message they make it a "possible" emergency.
/// keywords = ["emergency", "notruf", "urgence"]
/// dial_strings = ["911", "112", "999", "000", "110", "119", "111"]
/// test_dial_strings = ["933"]
/// possible_alert = "possible"      # a partial match: its own alert level ("full": the full alarm)
/// possible_raises_alarm = true      # false: a partial match is only recorded (older files)
/// require_group_chat = false        # true: only group chats can be emergencies
/// alarm_when_location_unknown = true # with zones: alarm if the call has no location
///
/// [[emergency.zones]]
/// name = "HQ"
/// patterns = ["725 Example Street", "Building 7"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Phrases of the notification text; any one matching is the `phrase` signal.
    pub phrases: Vec<String>,
    /// Words that mention an emergency without being the notification phrase.
    pub keywords: Vec<String>,
    /// Emergency numbers (digits only).
    pub dial_strings: Vec<String>,
    /// Test numbers (digits only), e.g. 933; a call to one is `Test`.
    pub test_dial_strings: Vec<String>,
    /// How loud a `Possible` classification is (default: its own "possible" level).
    pub possible_alert: PossibleAlert,
    /// Whether a `Possible` classification alerts at all (default true). Kept for older
    /// configuration files; `false` records it (console, notifications) without a local alert.
    pub possible_raises_alarm: bool,
    /// Only messages in group chats can be emergencies (default false).
    pub require_group_chat: bool,
    /// Whether a call without any location alarms when zones are configured (default true).
    pub alarm_when_location_unknown: bool,
    /// Optional local site filter; empty = every call alarms locally.
    pub zones: Vec<ZoneConfig>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            phrases: strings(&[
                // English (the phrase seen in the wild, E.5a) and close variants
                "has placed an Emergency Call",
                "placed an emergency call",
                "made an emergency call",
                // Spanish
                "ha realizado una llamada de emergencia",
                "realizó una llamada de emergencia",
                // French
                "a passé un appel d'urgence",
                "a effectué un appel d'urgence",
                // German
                "hat einen Notruf",
                // Italian
                "ha effettuato una chiamata di emergenza",
                // Portuguese
                "fez uma chamada de emergência",
                "efetuou uma chamada de emergência",
                "realizou uma chamada de emergência",
                // Dutch
                "heeft een noodoproep",
            ]),
            keywords: strings(&[
                "emergency",
                "emergencia",
                "urgence",
                "notruf",
                "notfall",
                "notfälle",
                "emergenza",
                "emergência",
                "noodoproep",
                "noodgeval",
            ]),
            dial_strings: strings(&["911", "112", "999", "000", "110", "119", "111"]),
            test_dial_strings: strings(&["933"]),
            possible_alert: PossibleAlert::Possible,
            possible_raises_alarm: true,
            require_group_chat: false,
            alarm_when_location_unknown: true,
            zones: Vec::new(),
        }
    }
}

/// How a possible emergency (a partial match) alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PossibleAlert {
    /// Its own level: own strobe pattern, a short siren burst, "POSSIBLE EMERGENCY — CHECK
    /// TEAMS"; a guard or a second source makes it the full alarm.
    #[default]
    Possible,
    /// The full alarm, like a recognised emergency call.
    Full,
}

/// Why a `RulesConfig` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("emergency.phrases is empty: at least one notification phrase is needed")]
    NoPhrases,
    #[error("emergency.{list}[{index}] is empty")]
    EmptyEntry { list: &'static str, index: usize },
    #[error("emergency.{list}: {value:?} is not a dial string (1 to 6 digits 0-9)")]
    NotDigits { list: &'static str, value: String },
    #[error("emergency: {value:?} is in both dial_strings and test_dial_strings")]
    BothEmergencyAndTest { value: String },
    #[error("emergency.zones[{index}]: {problem}")]
    Zone { index: usize, problem: String },
}

/// Compiled rules; build once with [`Rules::compile`], share read-only.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) phrases: Vec<String>,
    pub(crate) keywords: Vec<String>,
    pub(crate) dial_strings: Vec<String>,
    pub(crate) test_dial_strings: Vec<String>,
    pub(crate) possible_raises_alarm: bool,
    pub(crate) possible_alert: PossibleAlert,
    pub(crate) require_group_chat: bool,
    pub(crate) zones: ZoneRules,
    pub(crate) patterns: Patterns,
}

/// Regexes used by extraction, compiled once.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    /// Decimal coordinate pair, optional degree signs and hemisphere letters.
    pub coordinates: Regex,
    /// `@lat,lon`, `q=`/`ll=`/`query=`/`center=`/`destination=`/`where1=`/`map=` `lat,lon`,
    /// Bing `cp=lat~lon`.
    pub map_pair: Regex,
    /// Bing `sp=point.lat_lon`.
    pub bing_point: Regex,
    /// Google `…!3dLAT!4dLON` (place data in the path).
    pub google_data: Regex,
    /// RFC 5870 `geo:lat,lon[,alt][;…][?…]`.
    pub geo_uri: Regex,
    pub osm_mlat: Regex,
    pub osm_mlon: Regex,
    /// OSM `#map=zoom/lat/lon`.
    pub osm_hash: Regex,
    pub email: Regex,
    /// International or NANP-looking phone number.
    pub phone: Regex,
    pub url: Regex,
    /// One-line civic addresses (US, EU and UK forms).
    pub address: AddressPatterns,
    /// The announcement cues ("drill", "no action needed", …).
    pub cues: Cues,
}

impl Patterns {
    fn new() -> Self {
        const NUM: &str = r"[-+]?\d{1,3}\.\d+";
        let build =
            |re: &str| Regex::new(re).unwrap_or_else(|e| panic!("built-in regex {re}: {e}"));
        Self {
            coordinates: build(
                r"(?i)(?:^|[^\w.\-+])([-+]?\d{1,2}\.\d{2,})\s*°?\s*([NS])?\s*(?:[,;/]\s*|\s+)([-+]?\d{1,3}\.\d{2,})\s*°?\s*([EW])?(?:$|[^\w.])",
            ),
            map_pair: build(&format!(
                r"(?i)(?:@|[?&](?:q|ll|query|center|daddr|destination|cp|sll|where1|map)=(?:loc:)?)({NUM})\s*(?:,|%2C|~)\s*({NUM})"
            )),
            bing_point: build(&format!(r"(?i)[?&]sp=point\.({NUM})_({NUM})")),
            google_data: build(&format!(r"!3d({NUM})!4d({NUM})")),
            geo_uri: build(
                r"(?i)^geo:([-+]?\d{1,2}(?:\.\d+)?),([-+]?\d{1,3}(?:\.\d+)?)(?:$|[,;?])",
            ),
            osm_mlat: build(&format!(r"(?i)[?&]mlat=({NUM})")),
            osm_mlon: build(&format!(r"(?i)[?&]mlon=({NUM})")),
            osm_hash: build(&format!(r"#map=\d+/({NUM})/({NUM})")),
            email: build(r"(?i)\b[a-z0-9._%+'\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,24}\b"),
            phone: build(r"\+\d[\d\s\-.()]{5,20}\d|\(\d{3}\)\s*\d{3}[\s\-.]\d{4}"),
            url: build(r#"(?i)\bhttps?://[^\s<>"')\]]+"#),
            address: AddressPatterns::new(build),
            cues: Cues::new(),
        }
    }
}

impl Rules {
    /// Validates and compiles a configuration.
    pub fn compile(config: &RulesConfig) -> Result<Rules, RulesError> {
        if config.phrases.is_empty() {
            return Err(RulesError::NoPhrases);
        }
        let phrases = normalized_list("phrases", &config.phrases)?;
        let keywords = normalized_list("keywords", &config.keywords)?;
        let dial_strings = dial_list("dial_strings", &config.dial_strings)?;
        let test_dial_strings = dial_list("test_dial_strings", &config.test_dial_strings)?;
        if let Some(both) = dial_strings.iter().find(|d| test_dial_strings.contains(d)) {
            return Err(RulesError::BothEmergencyAndTest {
                value: both.clone(),
            });
        }
        Ok(Rules {
            phrases,
            keywords,
            dial_strings,
            test_dial_strings,
            possible_raises_alarm: config.possible_raises_alarm,
            possible_alert: config.possible_alert,
            require_group_chat: config.require_group_chat,
            zones: ZoneRules::compile(&config.zones, config.alarm_when_location_unknown)
                .map_err(|ZoneError { index, problem }| RulesError::Zone { index, problem })?,
            patterns: Patterns::new(),
        })
    }

    /// Whether `Possible` classifications alert locally at all.
    pub fn possible_raises_alarm(&self) -> bool {
        self.possible_raises_alarm
    }

    /// How loud a `Possible` classification alerts.
    pub fn possible_alert(&self) -> PossibleAlert {
        self.possible_alert
    }

    /// Whether `dial_string` (e.g. a Graph emergency call event's `emergencyNumberDialed`) is a
    /// configured test number: a call to it is a test, whichever source reports it. Spaces and
    /// dashes are ignored ("9-3-3").
    pub fn is_test_dial_string(&self, dial_string: &str) -> bool {
        let digits: String = dial_string
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        self.test_dial_strings.contains(&digits)
    }

    /// The compiled zone filter.
    pub fn zones(&self) -> &ZoneRules {
        &self.zones
    }
}

impl Default for Rules {
    /// The built-in defaults (they always compile).
    fn default() -> Self {
        match Rules::compile(&RulesConfig::default()) {
            Ok(rules) => rules,
            Err(e) => panic!("built-in emergency rules do not compile: {e}"),
        }
    }
}

fn normalized_list(list: &'static str, items: &[String]) -> Result<Vec<String>, RulesError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let n = normalize(item);
            if n.is_empty() {
                Err(RulesError::EmptyEntry { list, index })
            } else {
                Ok(n)
            }
        })
        .collect()
}

fn dial_list(list: &'static str, items: &[String]) -> Result<Vec<String>, RulesError> {
    items
        .iter()
        .map(|item| {
            let d = item.trim();
            if d.is_empty() || d.len() > 6 || !d.bytes().all(|b| b.is_ascii_digit()) {
                Err(RulesError::NotDigits {
                    list,
                    value: item.clone(),
                })
            } else {
                Ok(d.to_string())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(edit: impl FnOnce(&mut RulesConfig)) -> RulesConfig {
        let mut c = RulesConfig::default();
        edit(&mut c);
        c
    }

    #[test]
    fn test_dial_strings_are_recognised_from_any_source() {
        let rules = Rules::default();
        assert!(rules.is_test_dial_string("933"));
        assert!(rules.is_test_dial_string(" 9-3-3 "));
        assert!(!rules.is_test_dial_string("911"));
        assert!(!rules.is_test_dial_string("+1933"));
        let custom = Rules::compile(&config(|c| c.test_dial_strings = vec!["1999".into()]));
        assert!(
            custom.is_ok_and(|r| r.is_test_dial_string("1999") && !r.is_test_dial_string("933"))
        );
    }

    #[test]
    fn defaults_compile() {
        let rules = Rules::compile(&RulesConfig::default()).map_err(|e| e.to_string());
        assert!(rules.is_ok(), "{rules:?}");
    }

    #[test]
    fn bad_configs_are_rejected_with_clear_errors() {
        let err = |c: RulesConfig| Rules::compile(&c).err().map(|e| e.to_string());
        assert_eq!(
            err(config(|c| c.phrases.clear())).as_deref(),
            Some("emergency.phrases is empty: at least one notification phrase is needed")
        );
        assert_eq!(
            err(config(|c| c.phrases.push("  ".into()))).as_deref(),
            Some("emergency.phrases[13] is empty")
        );
        assert_eq!(
            err(config(|c| c.dial_strings.push("9-1-1".into()))).as_deref(),
            Some("emergency.dial_strings: \"9-1-1\" is not a dial string (1 to 6 digits 0-9)")
        );
        assert!(err(config(|c| c.test_dial_strings.push("911".into())))
            .is_some_and(|e| e.contains("both")));
    }

    #[test]
    fn toml_section_parses_and_rejects_unknown_fields() {
        #[derive(Deserialize)]
        struct App {
            emergency: RulesConfig,
        }
        let app: App = toml::from_str(
            "[emergency]\ndial_strings = [\"112\"]\nrequire_group_chat = true\n\
             [[emergency.zones]]\nname = \"HQ\"\npatterns = [\"Building 7\"]\n",
        )
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app.emergency.dial_strings, ["112"]);
        assert!(app.emergency.require_group_chat);
        assert!(
            app.emergency.possible_raises_alarm,
            "unset fields keep defaults"
        );
        assert_eq!(app.emergency.phrases, RulesConfig::default().phrases);
        assert_eq!(app.emergency.zones[0].name, "HQ");
        assert_eq!(app.emergency.possible_alert, PossibleAlert::Possible);
        // Files written before the possible level keep working; the new setting parses.
        let old: App = toml::from_str("[emergency]\npossible_raises_alarm = true\n")
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.emergency.possible_alert, PossibleAlert::Possible);
        let full: App = toml::from_str("[emergency]\npossible_alert = \"full\"\n")
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(full.emergency.possible_alert, PossibleAlert::Full);
        assert!(toml::from_str::<App>("[emergency]\npossible_alert = \"loud\"\n").is_err());
        let bad = toml::from_str::<App>("[emergency]\nphrase = [\"x\"]\n");
        assert!(bad.is_err_and(|e| e.to_string().contains("unknown field")));
    }
}
