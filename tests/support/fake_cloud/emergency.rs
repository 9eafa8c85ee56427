//! Graph's rules for emergency-event subscriptions (graph-teams.md B.10): the resource
//! `communications/calls/getEmergencyEventsByPolicy(policyName='…')`, the application
//! permission `CallEvents-Emergency.Read.All` only (a delegated token is refused with 403),
//! `changeType: updated`, rich notifications only, at most one day, one per application +
//! tenant + policy (a second is the usual 409, [`super::subscriptions`]).
//!
//! Microsoft does not document whether Event Hubs delivery is accepted for this resource
//! (B.10 [UNK]); the fake accepts it unless the test asks it to refuse with a 400 of its
//! choosing ([`super::FakeCloud::refuse_event_hubs_for_call_events`]).

use super::app_identity::EMERGENCY_ROLE;
use super::errors::GraphError;
use super::identity::AccessToken;

/// The longest lifetime of these subscriptions: one day (B.10).
pub const MAX_MINUTES: i64 = 24 * 60;

/// The policy name of an emergency-events resource, or `None` for any other resource.
pub fn policy_of(resource: &str) -> Option<String> {
    let rest = resource
        .trim_start_matches('/')
        .strip_prefix("communications/calls/getEmergencyEventsByPolicy(policyName='")?;
    let name = rest.strip_suffix("')")?;
    Some(name.replace("''", "'"))
}

/// Whether `caller` may create or touch an emergency-event subscription.
pub fn check_caller(caller: &AccessToken) -> Result<(), GraphError> {
    if !caller.app_only {
        return Err(GraphError::new(
            403,
            "Forbidden",
            format!("Subscriptions to emergency call events are not supported with delegated permissions; they need the application permission {EMERGENCY_ROLE}."),
        ));
    }
    if !caller.roles.iter().any(|r| r == EMERGENCY_ROLE) {
        return Err(GraphError::new(
            403,
            "Forbidden",
            format!(
                "Missing role permissions on the request. API requires one of '{EMERGENCY_ROLE}'. Roles on the request '{}'.",
                caller.roles.join(",")
            ),
        ));
    }
    Ok(())
}

/// The body rules of a creation: `updated` only, rich only.
pub fn check_body(change_type: &str, include_resource_data: bool) -> Result<(), GraphError> {
    if change_type.trim() != "updated" {
        return Err(GraphError::new(
            400,
            "InvalidRequest",
            format!("Invalid 'changeType' attribute: '{change_type}'. Emergency call events support 'updated' only."),
        ));
    }
    if !include_resource_data {
        return Err(GraphError::new(
            400,
            "InvalidRequest",
            "includeResourceData must be true for this resource: emergency call events are delivered as rich notifications only.",
        ));
    }
    Ok(())
}
