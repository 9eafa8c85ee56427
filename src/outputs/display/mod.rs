//! The 128×64 SSD1306 OLED on the desk.
//!
//! One [`Framebuffer`] is drawn by [`render`] from the alarm's
//! [`DisplayModel`](crate::alarm::DisplayModel) and a [`ScreenContext`], then both flushed to
//! the panel by [`Ssd1306::flush`] and encoded by [`Framebuffer::to_png`] for the web page's
//! mirror, so the page shows exactly what the desk shows.
//!
//! | file | concern |
//! |---|---|
//! | `framebuffer.rs` | the picture in SSD1306 page layout; an `embedded-graphics` draw target |
//! | `png.rs` | the picture as PNG |
//! | `ssd1306.rs` | the controller's I2C protocol (init, flush) |
//! | `text.rs` | cleaning untrusted text, cutting, wrapping, scrolling |
//! | `screens.rs` | ready, alarm, test, lamp test, trouble and setup screens |
//! | `last_call.rs` | the ready screen's "Last call" line, followed from the store and the alarm |
//! | `task.rs` | the loop: redraw on change and each second, flush, mirror |

pub mod framebuffer;
pub mod last_call;
pub mod png;
pub mod screens;
pub mod ssd1306;
pub mod task;
pub mod text;

pub use framebuffer::{Framebuffer, HEIGHT, PAGE_BYTES, WIDTH};
pub use screens::{
    render, JoinCodeInfo, LastCall, Screen, ScreenContext, SetupInfo, SignInCode, StatusTicks,
};
pub use ssd1306::{Ssd1306, DEFAULT_ADDRESS};
