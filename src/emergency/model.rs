//! The data model of a recognised call and of a verdict: the [`EmergencyCall`] with its
//! [`Caller`], [`Location`] and [`Address`], the [`Context`] the pipeline passes in, the
//! [`Signal`]s a decision is based on, the four [`Kind`]s of verdict and the
//! [`NotEmergencyReason`]s. Plain types only (a leaf: imports no sibling), so every other file
//! of the module can use them without import cycles.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kind of chat the message was posted in (Graph `chat.chatType`, any casing accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatType {
    OneOnOne,
    Group,
    Meeting,
    /// `unknownFutureValue` or anything new.
    Other,
}

impl ChatType {
    /// Parses a Graph `chatType` value in any casing.
    pub fn parse(value: &str) -> ChatType {
        match value.trim().to_ascii_lowercase().as_str() {
            "oneonone" | "one_on_one" => ChatType::OneOnOne,
            "group" => ChatType::Group,
            "meeting" => ChatType::Meeting,
            _ => ChatType::Other,
        }
    }
}

/// What the pipeline knows about the message besides its JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// From `GET /chats/{id}`, when known; unknown never rejects a message.
    pub chat_type: Option<ChatType>,
    /// Azure AD object id of the appliance's own account (messages it sent are ignored).
    pub service_account_id: Option<String>,
    /// When the notification arrived; used as `created` only if the message has no timestamp.
    pub received_at: Option<DateTime<Utc>>,
}

/// An emergency call extracted from a Teams notification.
///
/// **All strings are untrusted text chosen (partly) by the caller** — a display name can be
/// `<script>…`, `<img onerror=…>` or carry bidi overrides. Extraction removes control and bidi
/// override characters and caps lengths, but does not escape: every renderer (web page, e-mail,
/// SMS, display, MQTT consumer) must escape these strings for its own output format and must
/// never interpret them as markup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmergencyCall {
    pub caller: Caller,
    /// Call-back number (digits with a leading `+` when international), when the message has one.
    pub callback_number: Option<String>,
    /// The number dialled (911, 112, 933, …), when the message names it.
    pub dial_string: Option<String>,
    /// The dial string is a configured test number.
    pub is_test: bool,
    pub location: Location,
    /// Graph `chatMessage.id`.
    pub message_id: String,
    /// Graph `chatMessage.chatId` (empty when the message lacks it).
    pub chat_id: String,
    /// `createdDateTime` (falling back to `lastModifiedDateTime`, then `Context::received_at`).
    pub created: DateTime<Utc>,
    /// The chatMessage exactly as received (the latest version after [`super::merge_update`]).
    pub raw: Value,
}

/// Who placed the call (untrusted text, see [`EmergencyCall`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `from.user.displayName`, else a "Caller" label, else the text before the phrase;
    /// [`super::extract::UNKNOWN_CALLER`] when none of those exist.
    pub display_name: String,
    /// Azure AD object id (`from.user.id`).
    pub id: Option<String>,
    /// User principal name / e-mail, when the message provides one.
    pub upn: Option<String>,
}

/// Where the caller is (untrusted text, see [`EmergencyCall`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// The location as written, lines kept (`\n`).
    pub text: Option<String>,
    /// Site / location description / building.
    pub site: Option<String>,
    /// Civic parts, when the message labels them.
    pub address: Option<Address>,
    /// WGS84 degrees, validated (|lat| ≤ 90, |lon| ≤ 180, not 0,0); both or neither.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Location {
    /// Whether any part of a location is known.
    pub fn is_known(&self) -> bool {
        self.text.is_some()
            || self.site.is_some()
            || self.address.is_some()
            || self.latitude.is_some()
    }
}

/// Labelled civic address parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// Why a message is not an emergency notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotEmergencyReason {
    /// The input is not a JSON object (exit code 2).
    NotAChatMessage,
    /// `systemEventMessage` / `chatEvent` / `typing` or a `<systemEventMessage/>` body.
    SystemEvent,
    /// `deletedDateTime` is set.
    Deleted,
    /// Sent by the appliance's own service account.
    FromServiceAccount,
    /// `require_group_chat` is set and the chat is known not to be a group chat.
    NotGroupChat,
    /// Mentions an emergency but at normal importance, without call details.
    NormalImportance,
    /// Mentions an emergency but says it is not one: a notice of a test, drill, change or
    /// maintenance, or a reminder (no notification phrase).
    Announcement,
    /// Nothing emergency-like.
    NoEmergencySignals,
}

impl NotEmergencyReason {
    /// The reason in words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotAChatMessage => "input is not a chatMessage JSON object",
            Self::SystemEvent => "system event message",
            Self::Deleted => "message was deleted",
            Self::FromServiceAccount => "sent by the service account",
            Self::NotGroupChat => "not a group chat and require_group_chat is set",
            Self::NormalImportance => {
                "mentions an emergency at normal importance without call details"
            }
            Self::Announcement => {
                "mentions an emergency but says it is not one (a test, drill, change or reminder)"
            }
            Self::NoEmergencySignals => "no emergency signals",
        }
    }
}

/// Stable lower-case names of the four outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Emergency,
    Test,
    Possible,
    NotEmergency,
}

/// One observation about a message. Serialised in snake_case (`"high_importance"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// `messageType` systemEventMessage/chatEvent/typing or a `<systemEventMessage/>` body.
    SystemEvent,
    /// `deletedDateTime` is set.
    Deleted,
    /// `from.user.id` is the configured service account.
    FromServiceAccount,
    /// `from.user.id` is someone other than the configured service account.
    SenderNotServiceAccount,
    /// `importance` is high or urgent.
    HighImportance,
    /// The chat is a group chat (from [`Context::chat_type`]).
    GroupChat,
    /// The chat is known not to be a group chat while `require_group_chat` is set.
    NotGroupChat,
    /// A configured notification phrase is in the body or a card.
    Phrase,
    /// A configured keyword ("emergency", "Notruf", …) is in the body or a card.
    EmergencyKeyword,
    /// A configured emergency dial string is named.
    DialString,
    /// A configured test dial string (933) is named.
    TestDialString,
    /// Location text, a site or address parts were found.
    LocationText,
    /// Valid coordinates were found.
    Coordinates,
    /// A card attachment was read.
    AdaptiveCard,
    /// The text says it is not an emergency, or announces a test, drill, change or
    /// maintenance, or is a reminder ("this is not a drill" is not one).
    Announcement,
}
