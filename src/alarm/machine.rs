//! The alarm state machine: events in, effects out; outputs and the next deadline derived from
//! the state and the time passed in.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::config::{AcknowledgedStrobe, AlarmConfig};
use super::keys::RecentKeys;
use super::outputs::{Output, OutputPattern, OutputState};
use super::persist::{Acknowledgement, ActiveCall, Episode, PersistedState, PERSIST_VERSION};
use super::{
    AlarmState, AuditAction, AuditRecord, CallLevel, CallSummary, Effect, Event, Refusal, Source,
};

/// An active trouble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trouble {
    pub(crate) detail: String,
    pub(crate) since: DateTime<Utc>,
}

/// The alarm. See the module documentation for the rules it keeps.
#[derive(Debug, Clone)]
pub struct Alarm {
    config: AlarmConfig,
    pub(crate) calls: BTreeMap<String, ActiveCall>,
    pub(crate) episode: Option<Episode>,
    remembered: RecentKeys,
    pub(crate) troubles: BTreeMap<String, Trouble>,
    lamp_test_until: Option<DateTime<Utc>>,
}

/// The effects of one `handle` call being collected.
struct Step {
    now: DateTime<Utc>,
    effects: Vec<Effect>,
    changed: bool,
}

/// Who asked for something, as recorded in the audit log.
struct Actor {
    source: Source,
    who: Option<String>,
}

impl Actor {
    fn system() -> Self {
        Self::of(Source::System)
    }

    fn of(source: Source) -> Self {
        Actor { source, who: None }
    }
}

impl Alarm {
    /// A new, idle alarm.
    pub fn new(config: AlarmConfig) -> Self {
        Self {
            config,
            calls: BTreeMap::new(),
            episode: None,
            remembered: RecentKeys::default(),
            troubles: BTreeMap::new(),
            lamp_test_until: None,
        }
    }

    /// Rebuilds the alarm from stored state after a restart. The effects start with an audit
    /// record from [`Source::Restore`]; timers that fell due while the appliance was down run
    /// at once (for example an overdue escalation).
    pub fn restore(
        config: AlarmConfig,
        state: PersistedState,
        now: DateTime<Utc>,
    ) -> (Self, Vec<Effect>) {
        let mut alarm = Self::new(config);
        alarm.remembered = RecentKeys::from_remembered(state.remembered);
        for call in state.calls {
            let possible = call.summary.level() == CallLevel::Possible;
            alarm.remembered.insert(&call.key, call.raised_at, possible);
            alarm.calls.insert(call.key.clone(), call);
        }
        alarm.episode = alarm.restored_episode(state.episode);
        let mut step = Step::new(now);
        let current = alarm.state();
        alarm.record(
            &mut step,
            current,
            Actor::of(Source::Restore),
            AuditAction::Restored,
            alarm.keys_oldest_first(|_| true),
            None,
        );
        alarm.run_timers(&mut step);
        let effects = alarm.finish(step);
        (alarm, effects)
    }

    /// Makes the stored episode consistent with the restored calls.
    fn restored_episode(&self, stored: Option<Episode>) -> Option<Episode> {
        let first = self.calls.values().map(|c| c.raised_at).min()?;
        let last_ack = self
            .calls
            .values()
            .filter_map(|c| c.acknowledged.as_ref().map(|a| a.at))
            .max();
        let mut episode = stored.unwrap_or(Episode::starting_at(first));
        match self.state() {
            AlarmState::Acknowledged if episode.acknowledged_at.is_none() => {
                episode.acknowledged_at = last_ack;
            }
            AlarmState::Alerting => episode.acknowledged_at = None,
            _ => {}
        }
        Some(episode)
    }

    /// Applies one event at time `now` and returns what the adapter must do. Timers that are
    /// due at `now` run first, so a late `Tick` changes nothing about the outcome.
    pub fn handle(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Effect> {
        let mut step = Step::new(now);
        self.run_timers(&mut step);
        match event {
            Event::CallRaised { key, summary } => self.raise(&mut step, key, summary),
            Event::CallUpdated { key, summary } => self.update(&mut step, &key, summary),
            Event::Confirm {
                key,
                source,
                who,
                detail,
            } => self.confirm(&mut step, key, Actor { source, who }, detail),
            Event::Acknowledge { source, who } => {
                self.acknowledge(&mut step, Actor { source, who })
            }
            Event::Clear { source, who } => self.manual_clear(&mut step, Actor { source, who }),
            Event::Silence { source, who } => self.silence(&mut step, Actor { source, who }),
            Event::Tick => {}
            Event::TroubleRaised { component, detail } => {
                self.raise_trouble(&mut step, component, detail)
            }
            Event::TroubleCleared { component } => self.clear_trouble(&mut step, component),
            Event::LampTest { on, source, who } => {
                self.lamp_test(&mut step, on, Actor { source, who })
            }
        }
        self.finish(step)
    }

    /// The current state, derived from the active calls.
    pub fn state(&self) -> AlarmState {
        if self.calls.is_empty() {
            AlarmState::Idle
        } else if self.unacked().next().is_some() {
            AlarmState::Alerting
        } else {
            AlarmState::Acknowledged
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &AlarmConfig {
        &self.config
    }

    /// Active calls, oldest first.
    pub fn active_calls(&self) -> Vec<&ActiveCall> {
        let mut calls: Vec<&ActiveCall> = self.calls.values().collect();
        calls.sort_by(|a, b| a.raised_at.cmp(&b.raised_at).then(a.key.cmp(&b.key)));
        calls
    }

    /// What to store so that [`Alarm::restore`] can bring this state back.
    pub fn snapshot(&self) -> PersistedState {
        PersistedState {
            version: PERSIST_VERSION,
            calls: self.active_calls().into_iter().cloned().collect(),
            episode: self.episode.clone(),
            remembered: self.remembered.to_vec(),
        }
    }

    /// What the strobe, siren and trouble outputs should be doing at `now`.
    pub fn outputs(&self, now: DateTime<Utc>) -> OutputState {
        let trouble = if self.troubles.is_empty() {
            Output::Off
        } else {
            Output::flashing(self.config.trouble_flash_period_ms)
        };
        let pattern = self.pattern(now);
        let strobe = match pattern {
            OutputPattern::Alarm => Output::flashing(self.config.real_flash_period_ms),
            OutputPattern::Possible => Output::flashing(self.config.possible_flash_period_ms),
            OutputPattern::Test => Output::flashing(self.config.test_flash_period_ms),
            OutputPattern::Acknowledged => match self.config.acknowledged_strobe {
                AcknowledgedStrobe::Steady => Output::Steady,
                AcknowledgedStrobe::Off => Output::Off,
            },
            OutputPattern::LampTest => Output::Steady,
            OutputPattern::Idle => Output::Off,
        };
        let (siren, trouble) = if pattern == OutputPattern::LampTest {
            (Output::Steady, Output::Steady)
        } else if self.siren_sounding(now) || self.possible_siren_sounding(now) {
            (Output::Steady, trouble)
        } else {
            (Output::Off, trouble)
        };
        OutputState {
            pattern,
            strobe,
            siren,
            trouble,
        }
    }

    /// When the adapter should send the next `Tick`, if any timer is running.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        [
            self.lamp_test_until,
            self.possible_siren_due(),
            self.auto_silence_due(),
            self.escalation_due(),
            self.auto_clear_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- derived facts -------------------------------------------------------------------

    fn unacked(&self) -> impl Iterator<Item = &ActiveCall> {
        self.calls.values().filter(|c| c.acknowledged.is_none())
    }

    fn keys_oldest_first(&self, keep: impl Fn(&ActiveCall) -> bool) -> Vec<String> {
        self.active_calls()
            .into_iter()
            .filter(|c| keep(c))
            .map(|c| c.key.clone())
            .collect()
    }

    /// The most urgent level among the unacknowledged calls.
    fn unacked_level(&self) -> Option<CallLevel> {
        self.unacked().map(|c| c.summary.level()).min()
    }

    pub(crate) fn pattern(&self, now: DateTime<Utc>) -> OutputPattern {
        if let Some(level) = self.unacked_level() {
            match level {
                CallLevel::Emergency => OutputPattern::Alarm,
                CallLevel::Possible => OutputPattern::Possible,
                CallLevel::Test => OutputPattern::Test,
            }
        } else if !self.calls.is_empty() {
            OutputPattern::Acknowledged
        } else if self.lamp_test_until.is_some_and(|until| until > now) {
            OutputPattern::LampTest
        } else {
            OutputPattern::Idle
        }
    }

    /// Whether some unacknowledged call wants the continuous siren (real calls; tests if
    /// configured). A possible call has only its burst ([`Alarm::possible_siren_sounding`]).
    pub(crate) fn siren_wanted(&self) -> bool {
        self.unacked().any(|c| self.sounds_siren(&c.summary))
    }

    fn sounds_siren(&self, summary: &CallSummary) -> bool {
        match summary.level() {
            CallLevel::Emergency => true,
            CallLevel::Possible => false,
            CallLevel::Test => self.config.test_sounds_siren,
        }
    }

    /// The siren burst of a possible call: from its raise for `possible_siren_seconds`, while
    /// a possible call is unacknowledged and nobody silenced it.
    pub(crate) fn possible_siren_sounding(&self, now: DateTime<Utc>) -> bool {
        self.possible_siren_due().is_some_and(|until| until > now)
            && self
                .unacked()
                .any(|c| c.summary.level() == CallLevel::Possible)
    }

    fn possible_siren_due(&self) -> Option<DateTime<Utc>> {
        self.episode.as_ref()?.possible_siren_until
    }

    pub(crate) fn siren_sounding(&self, now: DateTime<Utc>) -> bool {
        let silenced = self.episode.as_ref().is_none_or(|e| e.siren_silenced);
        !silenced && self.siren_wanted() && self.auto_silence_due().is_none_or(|due| due > now)
    }

    fn auto_silence_due(&self) -> Option<DateTime<Utc>> {
        let episode = self.episode.as_ref().filter(|e| !e.siren_silenced)?;
        if !self.siren_wanted() {
            return None;
        }
        later(episode.siren_since, self.config.siren_auto_silence()?)
    }

    /// When the earliest unacknowledged real or possible call of the episode started waiting.
    fn unacked_waiting_since(&self) -> Option<DateTime<Utc>> {
        self.unacked()
            .filter(|c| c.summary.level() != CallLevel::Test)
            .map(ActiveCall::waiting_since)
            .min()
    }

    fn escalation_due(&self) -> Option<DateTime<Utc>> {
        self.episode.as_ref().filter(|e| !e.escalated)?;
        later(self.unacked_waiting_since()?, self.config.escalate_after()?)
    }

    fn auto_clear_due(&self) -> Option<DateTime<Utc>> {
        if self.state() != AlarmState::Acknowledged {
            return None;
        }
        let acknowledged_at = self.episode.as_ref()?.acknowledged_at?;
        later(acknowledged_at, self.config.auto_clear()?)
    }

    // ----- transitions ---------------------------------------------------------------------

    fn run_timers(&mut self, step: &mut Step) {
        let now = step.now;
        if self.lamp_test_until.is_some_and(|until| until <= now) {
            self.end_lamp_test(step, Actor::of(Source::Timer), "time is up");
        }
        if self.possible_siren_due().is_some_and(|until| until <= now) {
            if let Some(episode) = self.episode.as_mut() {
                episode.possible_siren_until = None;
            }
            step.changed = true;
        }
        if self.auto_silence_due().is_some_and(|due| due <= now) {
            let from = self.state();
            if let Some(episode) = self.episode.as_mut() {
                episode.siren_silenced = true;
            }
            let keys = self.keys_oldest_first(|c| c.acknowledged.is_none());
            self.record(
                step,
                from,
                Actor::of(Source::Timer),
                AuditAction::AutoSilenced,
                keys,
                None,
            );
        }
        if let (Some(due), Some(since)) = (self.escalation_due(), self.unacked_waiting_since()) {
            if due <= now {
                let from = self.state();
                if let Some(episode) = self.episode.as_mut() {
                    episode.escalated = true;
                }
                let keys = self.keys_oldest_first(|c| {
                    c.acknowledged.is_none() && c.summary.level() != CallLevel::Test
                });
                step.effects.push(Effect::Escalate {
                    keys: keys.clone(),
                    since,
                });
                self.record(
                    step,
                    from,
                    Actor::of(Source::Timer),
                    AuditAction::Escalated,
                    keys,
                    None,
                );
            }
        }
        if self.auto_clear_due().is_some_and(|due| due <= now) {
            self.clear(step, Actor::of(Source::Timer), AuditAction::AutoCleared);
        }
    }

    fn raise(&mut self, step: &mut Step, key: String, summary: CallSummary) {
        let level = summary.level();
        let mut detail = None;
        if self.calls.contains_key(&key) || self.remembered.contains(&key) {
            let active_possible = self
                .calls
                .get(&key)
                .map(|c| c.summary.level() == CallLevel::Possible);
            match (level, active_possible) {
                (CallLevel::Emergency, Some(true)) => {
                    self.corroborate(step, key, summary);
                    return;
                }
                (CallLevel::Emergency, None) if self.remembered.is_possible(&key) => {
                    // Cleared as possible, now reported as an emergency: raise it again.
                    self.remembered.confirm(&key);
                    detail = Some(CORROBORATED_AFTER_CLEAR.to_owned());
                }
                _ => {
                    step.refuse(Refusal::DuplicateCall { key });
                    return;
                }
            }
        }
        if self.lamp_test_until.is_some() {
            self.end_lamp_test(step, Actor::system(), "ended by an emergency call");
        }
        let now = step.now;
        let from = self.state();
        let resounds = self.sounds_siren(&summary);
        match self.episode.as_mut() {
            Some(episode) if from == AlarmState::Alerting => {
                if resounds {
                    episode.siren_since = now;
                    episode.siren_silenced = false;
                }
            }
            // Idle or Acknowledged: a new alerting episode.
            _ => self.episode = Some(Episode::starting_at(now)),
        }
        if level == CallLevel::Possible {
            let burst = self.config.possible_siren().and_then(|d| later(now, d));
            if let Some(episode) = self.episode.as_mut() {
                episode.possible_siren_until = burst;
            }
        }
        self.remembered
            .insert(&key, now, level == CallLevel::Possible);
        self.calls.insert(
            key.clone(),
            ActiveCall {
                key: key.clone(),
                summary,
                raised_at: now,
                acknowledged: None,
                waiting_since: None,
            },
        );
        self.record(
            step,
            from,
            Actor::system(),
            AuditAction::CallRaised,
            vec![key],
            detail,
        );
    }

    /// A second report calls the active possible call `key` an emergency: take its text and
    /// confirm it.
    fn corroborate(&mut self, step: &mut Step, key: String, mut summary: CallSummary) {
        if let Some(call) = self.calls.get_mut(&key) {
            // Still possible until `confirm` below upgrades it (and records the upgrade).
            summary.is_possible = true;
            call.summary = summary;
        }
        self.confirm(
            step,
            Some(key),
            Actor::system(),
            Some(CORROBORATED.to_owned()),
        );
    }

    /// Makes the possible call `key` (or, for `None`, every active possible call) a real one.
    fn confirm(
        &mut self,
        step: &mut Step,
        key: Option<String>,
        actor: Actor,
        detail: Option<String>,
    ) {
        let keys = match key {
            None => self.keys_oldest_first(|c| c.summary.level() == CallLevel::Possible),
            Some(key) => match self.calls.get(&key) {
                None => {
                    step.refuse(Refusal::UnknownCall { key });
                    return;
                }
                Some(c) if c.summary.level() == CallLevel::Possible => vec![key],
                Some(_) => Vec::new(),
            },
        };
        if keys.is_empty() {
            step.refuse(Refusal::NothingToConfirm);
            return;
        }
        let now = step.now;
        let from = self.state();
        for key in &keys {
            self.remembered.confirm(key);
            if let Some(call) = self.calls.get_mut(key) {
                call.summary.is_possible = false;
                if call.acknowledged.take().is_some() {
                    call.waiting_since = Some(now);
                }
            }
        }
        match self.episode.as_mut() {
            Some(episode) if from == AlarmState::Alerting => {
                episode.siren_since = now;
                episode.siren_silenced = false;
            }
            // Everything was acknowledged: a new alerting episode.
            _ => self.episode = Some(Episode::starting_at(now)),
        }
        self.record(step, from, actor, AuditAction::Confirmed, keys, detail);
    }

    fn update(&mut self, step: &mut Step, key: &str, mut summary: CallSummary) {
        let Some(call) = self.calls.get_mut(key) else {
            step.refuse(Refusal::UnknownCall {
                key: key.to_owned(),
            });
            return;
        };
        // Text only: the level was decided when the call was raised (or confirmed).
        summary.is_test = call.summary.is_test;
        summary.is_possible = call.summary.is_possible;
        if call.summary == summary {
            return;
        }
        call.summary = summary;
        let from = self.state();
        self.record(
            step,
            from,
            Actor::system(),
            AuditAction::CallUpdated,
            vec![key.to_owned()],
            None,
        );
    }

    fn acknowledge(&mut self, step: &mut Step, actor: Actor) {
        let keys = self.keys_oldest_first(|c| c.acknowledged.is_none());
        if keys.is_empty() {
            step.refuse(Refusal::NothingToAcknowledge);
            return;
        }
        let from = self.state();
        let ack = Acknowledgement {
            at: step.now,
            source: actor.source,
            who: actor.who.clone(),
        };
        for call in self.calls.values_mut().filter(|c| c.acknowledged.is_none()) {
            call.acknowledged = Some(ack.clone());
        }
        if let Some(episode) = self.episode.as_mut() {
            episode.acknowledged_at = Some(step.now);
            episode.possible_siren_until = None;
        }
        self.record(step, from, actor, AuditAction::Acknowledged, keys, None);
    }

    fn manual_clear(&mut self, step: &mut Step, actor: Actor) {
        match self.state() {
            AlarmState::Idle => step.refuse(Refusal::NothingToClear),
            AlarmState::Alerting => {
                let keys = self.keys_oldest_first(|c| c.acknowledged.is_none());
                step.refuse(Refusal::NotAcknowledged { keys });
            }
            AlarmState::Acknowledged => self.clear(step, actor, AuditAction::Cleared),
        }
    }

    /// Closes the event. Callers make sure everything is acknowledged.
    fn clear(&mut self, step: &mut Step, actor: Actor, action: AuditAction) {
        let from = self.state();
        let keys = self.keys_oldest_first(|_| true);
        self.calls.clear();
        self.episode = None;
        self.record(step, from, actor, action, keys, None);
    }

    fn silence(&mut self, step: &mut Step, actor: Actor) {
        if !self.siren_sounding(step.now) && !self.possible_siren_sounding(step.now) {
            step.refuse(Refusal::NothingToSilence);
            return;
        }
        let from = self.state();
        if let Some(episode) = self.episode.as_mut() {
            episode.siren_silenced = true;
            episode.possible_siren_until = None;
        }
        let keys = self.keys_oldest_first(|c| c.acknowledged.is_none());
        self.record(step, from, actor, AuditAction::Silenced, keys, None);
    }

    fn raise_trouble(&mut self, step: &mut Step, component: String, detail: String) {
        if let Some(trouble) = self.troubles.get_mut(&component) {
            if trouble.detail != detail {
                trouble.detail = detail;
                step.changed = true;
            }
            return;
        }
        let text = format!("{component}: {detail}");
        self.troubles.insert(
            component,
            Trouble {
                detail,
                since: step.now,
            },
        );
        let from = self.state();
        self.record(
            step,
            from,
            Actor::system(),
            AuditAction::TroubleRaised,
            Vec::new(),
            Some(text),
        );
    }

    fn clear_trouble(&mut self, step: &mut Step, component: String) {
        if self.troubles.remove(&component).is_none() {
            step.refuse(Refusal::UnknownTrouble { component });
            return;
        }
        let from = self.state();
        self.record(
            step,
            from,
            Actor::system(),
            AuditAction::TroubleCleared,
            Vec::new(),
            Some(component),
        );
    }

    fn lamp_test(&mut self, step: &mut Step, on: bool, actor: Actor) {
        if !on {
            if self.lamp_test_until.is_some() {
                self.end_lamp_test(step, actor, "stopped");
            } else {
                step.refuse(Refusal::NoLampTest);
            }
            return;
        }
        if !self.calls.is_empty() {
            step.refuse(Refusal::CallActive);
            return;
        }
        let running = self.lamp_test_until.is_some();
        self.lamp_test_until = later(step.now, self.config.lamp_test());
        step.changed = true;
        if !running {
            let from = self.state();
            self.record(
                step,
                from,
                actor,
                AuditAction::LampTestStarted,
                Vec::new(),
                None,
            );
        }
    }

    fn end_lamp_test(&mut self, step: &mut Step, actor: Actor, why: &str) {
        self.lamp_test_until = None;
        let from = self.state();
        self.record(
            step,
            from,
            actor,
            AuditAction::LampTestEnded,
            Vec::new(),
            Some(why.to_owned()),
        );
    }

    // ----- effects -------------------------------------------------------------------------

    fn record(
        &self,
        step: &mut Step,
        from: AlarmState,
        actor: Actor,
        action: AuditAction,
        keys: Vec<String>,
        detail: Option<String>,
    ) {
        step.changed = true;
        step.effects.push(Effect::Audit(AuditRecord {
            at: step.now,
            source: actor.source,
            who: actor.who,
            action,
            from,
            to: self.state(),
            keys,
            detail,
        }));
    }

    fn finish(&self, mut step: Step) -> Vec<Effect> {
        if step.changed {
            step.effects.push(Effect::StateChanged {
                state: self.state(),
            });
        }
        step.effects
    }
}

impl Step {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            effects: Vec::new(),
            changed: false,
        }
    }

    fn refuse(&mut self, reason: Refusal) {
        self.effects.push(Effect::Refused(reason));
    }
}

impl Episode {
    fn starting_at(now: DateTime<Utc>) -> Self {
        Episode {
            alerting_since: now,
            escalated: false,
            siren_since: now,
            siren_silenced: false,
            acknowledged_at: None,
            possible_siren_until: None,
        }
    }
}

/// Audit detail of a possible call upgraded by a second report of the same key.
const CORROBORATED: &str = "corroborated: a second report of the call names it an emergency";
/// Audit detail of a possible call, already cleared, raised again by a report naming it an
/// emergency.
const CORROBORATED_AFTER_CLEAR: &str =
    "raised again: a call cleared as possible is now reported as an emergency";

/// `t + d`, or `None` past the end of time (the timer never fires).
fn later(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    t.checked_add_signed(d)
}
