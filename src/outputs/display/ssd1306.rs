//! The SSD1306 controller over I2C: initialisation and full-frame flush from a [`Framebuffer`].
//!
//! Written here rather than taken from the `ssd1306` crate: that crate keeps its own
//! framebuffer and hides bus errors behind `display-interface`'s `DisplayError`, while Beacon
//! draws into one [`Framebuffer`] (also the web mirror) and wants the bus's own error.

use embedded_hal::i2c::I2c;

use super::framebuffer::{Framebuffer, WIDTH};

/// The usual 7-bit address of a 128×64 module (0x3D when its SA0 pin is high).
pub const DEFAULT_ADDRESS: u8 = 0x3C;

/// Control byte: the rest of the write is a command stream.
pub const CONTROL_COMMANDS: u8 = 0x00;
/// Control byte: the rest of the write is display RAM data.
pub const CONTROL_DATA: u8 = 0x40;

/// Commands (with their arguments) that turn a 128×64 panel on with the internal charge pump,
/// horizontal addressing, and row 0 / column 0 at the top-left of the framebuffer.
pub const INIT_SEQUENCE: &[u8] = &[
    0xAE, // display off
    0xD5, 0x80, // clock divide ratio / oscillator frequency: reset default
    0xA8, 0x3F, // multiplex ratio: 64 rows
    0xD3, 0x00, // display offset: none
    0x40, // display start line 0
    0x8D, 0x14, // charge pump on (no external VCC)
    0x20, 0x00, // memory addressing mode: horizontal
    0xA1, // segment remap: column 127 is SEG0 (picture not mirrored)
    0xC8, // COM output scan: remapped (picture not upside down)
    0xDA, 0x12, // COM pins: alternative configuration, no left/right remap
    0x81, 0xCF, // contrast
    0xD9, 0xF1, // pre-charge period (internal charge pump)
    0xDB, 0x40, // VCOMH deselect level
    0xA4, // show RAM contents (not all pixels on)
    0xA6, // normal (not inverted)
    0x2E, // scrolling off
    0xAF, // display on
];

/// Pages are sent one per I2C write: 128 data bytes after the control byte, a size every
/// Linux I2C adapter accepts.
const CHUNK: usize = WIDTH as usize;

/// An SSD1306 128×64 panel on an I2C bus. Every bus error is returned as is; nothing panics.
#[derive(Debug)]
pub struct Ssd1306<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> Ssd1306<I2C> {
    /// A panel at `address` (usually [`DEFAULT_ADDRESS`]); nothing is sent until [`Self::init`].
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self { i2c, address }
    }

    /// Sends [`INIT_SEQUENCE`]; the panel is on afterwards, showing whatever its RAM holds.
    pub fn init(&mut self) -> Result<(), I2C::Error> {
        self.commands(INIT_SEQUENCE)
    }

    /// Sets the panel's contrast (0–255).
    pub fn set_contrast(&mut self, contrast: u8) -> Result<(), I2C::Error> {
        self.commands(&[0x81, contrast])
    }

    /// Turns the panel on or off (sleep); RAM is kept.
    pub fn set_display_on(&mut self, on: bool) -> Result<(), I2C::Error> {
        self.commands(&[if on { 0xAF } else { 0xAE }])
    }

    /// Writes the whole framebuffer to the panel's RAM: the address window is set to all
    /// 128 columns and 8 pages, then the 1024 bytes follow in page order.
    pub fn flush(&mut self, frame: &Framebuffer) -> Result<(), I2C::Error> {
        self.commands(&[0x21, 0, (WIDTH - 1) as u8, 0x22, 0, 7])?;
        let pages = frame.pages();
        let mut buf = [0u8; CHUNK + 1];
        buf[0] = CONTROL_DATA;
        for chunk in pages.chunks(CHUNK) {
            buf[1..=chunk.len()].copy_from_slice(chunk);
            self.i2c.write(self.address, &buf[..=chunk.len()])?;
        }
        Ok(())
    }

    /// Gives the bus back.
    pub fn release(self) -> I2C {
        self.i2c
    }

    fn commands(&mut self, commands: &[u8]) -> Result<(), I2C::Error> {
        let mut buf = Vec::with_capacity(commands.len() + 1);
        buf.push(CONTROL_COMMANDS);
        buf.extend_from_slice(commands);
        self.i2c.write(self.address, &buf)
    }
}
