//! Folding a later (`updated`) version of the same chatMessage into an existing call.
//!
//! An edit can add or change the location, UPN or call-back number; it never creates a new
//! call and never changes who called, when, which message it was, or whether it was a test
//! (the alarm has already been decided). Fields the edit no longer carries are kept: an edit
//! can add information but not erase it. Deleted or system versions change nothing.

use serde_json::Value;

use super::extract;
use super::message::MessageText;
use super::model::{Context, EmergencyCall, NotEmergencyReason};
use super::rules::Rules;
use super::signals;

/// The merged call and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    pub call: EmergencyCall,
    /// Whether anything in `call` differs from the existing call.
    pub changed: bool,
    /// Names of the fields that changed (`"location.text"`, `"caller.upn"`, `"raw"`, …).
    pub changed_fields: Vec<&'static str>,
}

/// Why an update cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("update is not a chatMessage JSON object")]
    NotAChatMessage,
    #[error("update is for message {update:?}, not {existing:?}")]
    DifferentMessage { existing: String, update: String },
}

/// Merges `updated` (a later version of `existing.message_id`) into `existing`.
pub fn merge_update(
    existing: &EmergencyCall,
    updated: &Value,
    context: &Context,
    rules: &Rules,
) -> Result<MergeOutcome, MergeError> {
    let object = updated.as_object().ok_or(MergeError::NotAChatMessage)?;
    let text = MessageText::read(object);
    let found = signals::detect(object, &text, context, rules);
    let fresh = extract::build_call(updated, object, &text, &found, context, rules);
    if !existing.message_id.is_empty()
        && !fresh.message_id.is_empty()
        && fresh.message_id != existing.message_id
    {
        return Err(MergeError::DifferentMessage {
            existing: existing.message_id.clone(),
            update: fresh.message_id,
        });
    }
    let mut call = existing.clone();
    let mut changed_fields = Vec::new();
    let ignored = matches!(
        found.rejection,
        Some(
            NotEmergencyReason::SystemEvent
                | NotEmergencyReason::Deleted
                | NotEmergencyReason::FromServiceAccount
        )
    );
    if ignored {
        return Ok(MergeOutcome {
            call,
            changed: false,
            changed_fields,
        });
    }
    let mut take = |name: &'static str, slot: &mut Option<String>, new: Option<String>| {
        if new.is_some() && *slot != new {
            *slot = new;
            changed_fields.push(name);
        }
    };
    let new_loc = fresh.location;
    let loc = &mut call.location;
    take("location.text", &mut loc.text, new_loc.text);
    take("location.site", &mut loc.site, new_loc.site);
    take("caller.upn", &mut call.caller.upn, fresh.caller.upn);
    take(
        "callback_number",
        &mut call.callback_number,
        fresh.callback_number,
    );
    if call.dial_string.is_none() {
        take("dial_string", &mut call.dial_string, fresh.dial_string);
    }
    if new_loc.address.is_some() && loc.address != new_loc.address {
        loc.address = new_loc.address;
        changed_fields.push("location.address");
    }
    if new_loc.latitude.is_some()
        && (loc.latitude, loc.longitude) != (new_loc.latitude, new_loc.longitude)
    {
        (loc.latitude, loc.longitude) = (new_loc.latitude, new_loc.longitude);
        changed_fields.push("location.coordinates");
    }
    if call.raw != *updated {
        call.raw = updated.clone();
        changed_fields.push("raw");
    }
    Ok(MergeOutcome {
        call,
        changed: !changed_fields.is_empty(),
        changed_fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(id: &str, body: &str) -> Value {
        json!({"id": id, "chatId": "19:a@thread.v2", "importance": "high",
            "createdDateTime": "2025-03-01T10:15:23Z",
            "from": {"user": {"id": "u1", "displayName": "Jordan"}},
            "body": {"contentType": "html", "content": body}})
    }

    fn first(body: &str) -> EmergencyCall {
        extract::extract(&message("m1", body), &Context::default(), &Rules::default())
            .unwrap_or_default()
    }

    const PHRASE: &str = "<p>Jordan has placed an Emergency Call to 911</p>";

    #[test]
    fn location_arriving_later_is_merged_and_reported() {
        let existing = first(PHRASE);
        assert_eq!(existing.location.text, None);
        let body = format!("{PHRASE}<p>Location: Building 7</p><p>47.6396, -122.1283</p>");
        let out = merge_update(
            &existing,
            &message("m1", &body),
            &Context::default(),
            &Rules::default(),
        );
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert!(out.changed);
        assert_eq!(
            out.changed_fields,
            ["location.text", "location.coordinates", "raw"]
        );
        assert_eq!(out.call.location.text.as_deref(), Some("Building 7"));
        assert_eq!(out.call.location.latitude, Some(47.6396));
        assert_eq!(out.call.message_id, existing.message_id);
        assert_eq!(out.call.created, existing.created);
        assert_eq!(out.call.caller, existing.caller);
    }

    #[test]
    fn identical_version_changes_nothing() {
        let body = format!("{PHRASE}<p>Location: Building 7</p>");
        let existing = first(&body);
        let out = merge_update(
            &existing,
            &message("m1", &body),
            &Context::default(),
            &Rules::default(),
        );
        assert_eq!(
            out.map(|o| (o.changed, o.call == existing)),
            Ok((false, true))
        );
    }

    #[test]
    fn an_edit_cannot_erase_or_retarget_the_call() {
        let existing = first(&format!("{PHRASE}<p>Location: Building 7</p>"));
        // The edit drops the location and names a test number instead.
        let edit = message("m1", "<p>Jordan has placed an Emergency Call to 933</p>");
        let out = merge_update(&existing, &edit, &Context::default(), &Rules::default());
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.call.location.text.as_deref(), Some("Building 7"));
        assert_eq!(out.call.dial_string.as_deref(), Some("911"));
        assert!(!out.call.is_test);
        assert_eq!(out.changed_fields, ["raw"]);
    }

    #[test]
    fn deleted_versions_and_other_messages_are_not_merged() {
        let existing = first(PHRASE);
        let mut deleted = message("m1", "");
        deleted["deletedDateTime"] = json!("2025-03-01T10:20:00Z");
        let out = merge_update(&existing, &deleted, &Context::default(), &Rules::default());
        assert_eq!(out.map(|o| o.changed), Ok(false));
        let other = merge_update(
            &existing,
            &message("m2", PHRASE),
            &Context::default(),
            &Rules::default(),
        );
        assert!(matches!(other, Err(MergeError::DifferentMessage { .. })));
        assert_eq!(
            merge_update(
                &existing,
                &json!("text"),
                &Context::default(),
                &Rules::default()
            ),
            Err(MergeError::NotAChatMessage)
        );
    }
}
