//! Pins for the outputs and the button: [`sim`] (in memory, observable; tests, development
//! and the web page) and, on Linux, [`linux`] (GPIO character device, uAPI v2). [`failsafe`]
//! de-energises every output when the process panics.

pub mod failsafe;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod sim;
