//! The configuration: `beacon.toml` text (written by hand, or by the setup page from form
//! fields) and `BEACON_*` environment overrides. `Config::from_parts` answers a `Config` or a
//! `ConfigError` and never panics; its errors print.
//!
//! Input: the TOML text, then optionally a NUL byte and environment lines `NAME=value`
//! (`BEACON_` is put in front of each name).
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use beacon::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, env_part) = match data.iter().position(|b| *b == 0) {
        Some(cut) => (&data[..cut], &data[cut + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let mut env = BTreeMap::new();
    for line in String::from_utf8_lossy(env_part).lines() {
        if let Some((name, value)) = line.split_once('=') {
            env.insert(format!("BEACON_{name}"), value.to_string());
        }
    }
    match Config::from_parts(Path::new("/etc/beacon/beacon.toml"), text, &env) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
