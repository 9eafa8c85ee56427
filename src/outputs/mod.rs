//! Beacon's physical outputs, driven from the alarm's pure views.
//!
//! [`display`]: the 128×64 SSD1306 OLED (framebuffer, screens, I2C driver, PNG mirror).

pub mod display;
