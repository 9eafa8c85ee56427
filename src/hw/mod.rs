//! Pins for the outputs and the button: [`sim`] (in memory, observable; tests, development
//! and the web page) and, on Linux, [`linux`] (GPIO character device, uAPI v2).

#[cfg(target_os = "linux")]
pub mod linux;
pub mod sim;
