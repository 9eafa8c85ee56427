//! Classifying a Teams `chatMessage` as an emergency-call notification and extracting the call;
//! the call a Graph emergency call event reports ([`call_event`]).
//!
//! Pure: no IO, no clock reads (time, when needed, comes in through [`Context`]). The entry
//! point is [`classify`]; [`merge_update`] folds later edits of the same message into an
//! existing call, [`ZoneRules::decide`] is the local site filter and [`ParseReport`] is the
//! stable `beacon parse` output. The decision itself is documented in `verdict.rs`.
//!
//! One concern per file, in layers (a file imports only from files listed before it; this file
//! only declares and re-exports, so there is no import cycle between them):
//!
//! | file | what it is for |
//! |---|---|
//! | `model` | the data types: call, caller, location, address, context, signals, kinds, reasons |
//! | `textnorm` | normalising text for matching, cleaning and capping values |
//! | `html` | HTML body → text lines and links (html5gum tokenizer) |
//! | `card` | adaptive / hero card attachments → lines and links |
//! | `zones` | the local site filter |
//! | `address` | splitting a one-line civic address into its parts |
//! | `rules` | configuration (`[emergency]`) and its compiled form |
//! | `labels` | the labels a line may carry ("Location:", "Dialed:", …) |
//! | `message` | the text model of a message: lines, labels, links |
//! | `cues` | words by which a message says it is not an emergency (test, drill, change, …) |
//! | `dial` | the dial string and whether it is a test number |
//! | `coordinates` | coordinates from labels, map links and text |
//! | `location` | location text, site, address, coordinates |
//! | `signals` | detection: every signal of a message, gathered once |
//! | `extract` | building the `EmergencyCall` |
//! | `classify` | the decision and the `Classification` |
//! | `update` | merging a later edit of the message |
//! | `call_event` | a Graph emergency call event as a call, and the call two sources make |
//! | `report` | the `beacon parse` output and exit code |

mod address;
pub mod call_event;
pub mod card;

mod coordinates;
mod cues;
mod dial;
pub mod extract;
pub mod html;
mod labels;
pub mod location;
mod message;
mod model;
pub mod report;
pub mod rules;
pub mod signals;
mod textnorm;
pub mod update;
mod verdict;
pub mod zones;

pub use message::excerpt;
pub use model::{
    Address, Caller, ChatType, Context, EmergencyCall, Kind, Location, NotEmergencyReason, Signal,
};
pub use report::{exit_code, ParseReport};
pub use rules::{PossibleAlert, Rules, RulesConfig, RulesError};
pub use update::{merge_update, MergeError, MergeOutcome};
pub use verdict::{classify, Classification};
pub use zones::{ZoneConfig, ZoneDecision, ZoneReason, ZoneRules};
