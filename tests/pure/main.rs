//! Tests that need nothing but the crate: the alarm machine and its properties, the display
//! screens and SSD1306 driver, outputs, configuration errors, notification planning and
//! decoding, recognition (the fixture corpus with its recall table, property tests) and
//! recognition into an in-memory alarm, health supervision.
//!
//! One test binary per kind of need (see `tests/README.md`); each file below was a binary of
//! its own.

#[path = "../support/mod.rs"]
mod support;

mod alarm_possible;
mod alarm_properties;
mod alarm_transitions;
mod config_errors;
mod display_screens;
mod display_ssd1306;
mod display_task;
mod emergency_corpus;
mod emergency_props;
mod health_supervisor;
mod ingest_call_events;
mod notification_props;
mod notify_plan;
mod outputs_button;
mod outputs_config;
mod outputs_relays;
mod recognise_burst;
mod recognise_possible;
mod recognise_sources;
