//! The last line of defence: when the process panics, every alarm output is de-energised
//! before the process ends, and the service manager restarts it (the alarm state is restored
//! from its file beside the store, so an unacknowledged call alarms again within seconds).
//!
//! Drivers register a *de-energise action* for each line they open ([`register`]); the
//! actions must be callable from any thread at any moment (on Linux: a duplicate of the
//! line's file descriptor, written with one ioctl). [`install_panic_hook`] makes a panic on
//! any thread run them ([`trip`]) and exit with [`PANIC_EXIT_CODE`]. Without the hook a
//! panicking task would be caught by the runtime and leave a silent appliance behind: a
//! dead alarm task freezes the strobe, a dead relay task leaves a relay closed.

use std::cell::Cell;
use std::sync::Mutex;

/// The exit status after a panic (EX_SOFTWARE).
pub const PANIC_EXIT_CODE: i32 = 70;

type Action = Box<dyn Fn() -> Result<(), String> + Send>;

static ACTIONS: Mutex<Vec<(String, Action)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread runs [`contain`]: a panic there is reported and caught, not fatal.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Registers how to de-energise the output `what` (strobe, siren, trouble …).
pub fn register(what: impl Into<String>, action: impl Fn() -> Result<(), String> + Send + 'static) {
    let mut actions = ACTIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    actions.push((what.into(), Box::new(action)));
}

/// Forgets every registered action (a board closed in an orderly way, or a test's board).
pub fn clear() {
    ACTIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
}

/// Runs every registered action; returns the outputs that could not be de-energised, with
/// the reason. Never blocks for long and never panics: the registry lock is taken even when
/// a panicking thread poisoned it.
pub fn trip() -> Vec<(String, String)> {
    let actions = ACTIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    actions
        .iter()
        .filter_map(|(what, action)| action().err().map(|e| (what.clone(), e)))
        .collect()
}

/// From now on a panic on any thread de-energises the outputs and ends the process with
/// [`PANIC_EXIT_CODE`] after the default report (message and location) is printed.
pub fn install_panic_hook() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        if CONTAINED.with(Cell::get) {
            return;
        }
        let failed = trip();
        for (what, reason) in &failed {
            eprintln!("beacon: could not de-energise {what} after a panic: {reason}");
        }
        eprintln!(
            "beacon: panic: outputs de-energised ({} failed); exiting for a restart",
            failed.len()
        );
        std::process::exit(PANIC_EXIT_CODE);
    }));
}

/// Runs `work` so that a panic inside it is reported and returned as an error instead of
/// ending the process: for code that is known to panic on damaged input and whose failure the
/// caller can recover from (opening a damaged store). Outputs are not tripped for it.
pub fn contain<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    let was = CONTAINED.with(|c| c.replace(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    CONTAINED.with(|c| c.set(was));
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic without a message".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn trip_runs_every_action_and_reports_the_ones_that_failed() {
        let strobe_on = Arc::new(AtomicBool::new(true));
        let lamp = strobe_on.clone();
        register("strobe", move || {
            lamp.store(false, Ordering::SeqCst);
            Ok(())
        });
        register("siren", || Err("line busy".into()));
        let failed = trip();
        assert!(!strobe_on.load(Ordering::SeqCst), "the strobe went dark");
        assert!(failed.contains(&("siren".to_string(), "line busy".to_string())));
        clear();
        assert!(trip().is_empty());
    }

    #[test]
    fn a_contained_panic_is_an_error_and_trips_nothing() {
        let result: Result<(), String> = contain(|| panic!("damaged page"));
        assert_eq!(result, Err("damaged page".to_string()));
        assert_eq!(contain(|| 7), Ok(7));
    }
}
