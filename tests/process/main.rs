//! Tests of the `beacon` binary as a whole process: the command line, `beacon run` under
//! systemd's protocols, the demo, the setup wizard, shutdown, notifications end to end.
//!
//! One test binary per kind of need (see `tests/README.md`); each file below was a binary of
//! its own.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod cli_login;
mod fleet_rotation;
mod fleet_three_boxes;
mod fleet_two_desks;
mod mqtt_process;
mod notify_run;
mod recognise_replay;
mod run_service;
mod safe_mode;
mod service_manager;
mod web_demo;
mod web_setup_wizard;
mod web_shutdown;
