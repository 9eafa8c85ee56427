//! The SSD1306 driver against a simulated panel: a fake I2C bus that interprets the
//! controller's command stream and data writes into its own display RAM.

use beacon::outputs::display::{Framebuffer, Ssd1306, DEFAULT_ADDRESS, PAGE_BYTES};
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::Text;
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

#[derive(Debug, PartialEq, Eq)]
struct Nack;

impl embedded_hal::i2c::Error for Nack {
    fn kind(&self) -> ErrorKind {
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
    }
}

/// A 128×64 SSD1306 at one address. Starts as after power-on reset: page addressing mode,
/// display off, charge pump off, RAM full of garbage.
struct FakePanel {
    address: u8,
    ram: [u8; PAGE_BYTES],
    display_on: bool,
    charge_pump: bool,
    multiplex: u8,
    segment_remap: bool,
    com_scan_remapped: bool,
    /// 0 horizontal, 1 vertical, 2 page.
    addressing_mode: u8,
    columns: (u8, u8),
    pages: (u8, u8),
    column: u8,
    page: u8,
    writes: usize,
    /// Refuse every write from this one on (counting from 0).
    fail_from: Option<usize>,
}

impl FakePanel {
    fn new() -> Self {
        Self {
            address: DEFAULT_ADDRESS,
            ram: [0xA5; PAGE_BYTES],
            display_on: false,
            charge_pump: false,
            multiplex: 0,
            segment_remap: false,
            com_scan_remapped: false,
            addressing_mode: 2,
            columns: (0, 127),
            pages: (0, 7),
            column: 0,
            page: 0,
            writes: 0,
            fail_from: None,
        }
    }

    fn command(&mut self, stream: &[u8]) {
        let mut i = 0;
        while i < stream.len() {
            let op = stream[i];
            let nargs = match op {
                0x21 | 0x22 => 2,
                0x20 | 0x81 | 0x8D | 0xA8 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB => 1,
                _ => 0,
            };
            let args = &stream[i + 1..i + 1 + nargs];
            match op {
                0xAE | 0xAF => self.display_on = op == 0xAF,
                0x8D => self.charge_pump = args[0] == 0x14,
                0xA8 => self.multiplex = args[0],
                0xA0 | 0xA1 => self.segment_remap = op == 0xA1,
                0xC0 | 0xC8 => self.com_scan_remapped = op == 0xC8,
                0x20 => self.addressing_mode = args[0],
                0x21 => {
                    self.columns = (args[0], args[1]);
                    self.column = args[0];
                }
                0x22 => {
                    self.pages = (args[0], args[1]);
                    self.page = args[0];
                }
                0x40..=0x7F | 0x81 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB => {}
                0xA4 | 0xA6 | 0x2E => {}
                other => panic!("command {other:#04x} is not expected from the driver"),
            }
            i += 1 + nargs;
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.ram[self.page as usize * 128 + self.column as usize] = b;
            if self.column < self.columns.1 {
                self.column += 1;
                continue;
            }
            self.column = self.columns.0;
            // Page mode stays on its page; horizontal mode moves on and wraps.
            if self.addressing_mode == 0 {
                self.page = if self.page < self.pages.1 {
                    self.page + 1
                } else {
                    self.pages.0
                };
            }
        }
    }
}

impl ErrorType for FakePanel {
    type Error = Nack;
}

impl I2c for FakePanel {
    fn transaction(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), Nack> {
        if address != self.address || self.fail_from.is_some_and(|n| self.writes >= n) {
            return Err(Nack);
        }
        for op in ops {
            let Operation::Write(bytes) = op else {
                panic!("the driver never reads");
            };
            self.writes += 1;
            match bytes.split_first() {
                Some((0x00, commands)) => self.command(commands),
                Some((0x40, data)) => self.data(data),
                other => panic!("bad control byte in {other:?}"),
            }
        }
        Ok(())
    }
}

fn picture(text: &str) -> Framebuffer {
    let mut fb = Framebuffer::new();
    let style = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);
    Text::new(text, Point::new(3, 20), style)
        .draw(&mut fb)
        .unwrap();
    fb.set_pixel(0, 0, true);
    fb.set_pixel(127, 63, true);
    fb
}

#[test]
fn init_turns_the_panel_on_the_right_way_up() {
    let mut oled = Ssd1306::new(FakePanel::new(), DEFAULT_ADDRESS);
    oled.init().unwrap();
    let panel = oled.release();
    assert!(panel.display_on);
    assert!(panel.charge_pump);
    assert_eq!(panel.multiplex, 63);
    assert!(panel.segment_remap && panel.com_scan_remapped);
    assert_eq!(panel.addressing_mode, 0);
}

#[test]
fn flush_puts_the_framebuffer_into_panel_ram_and_a_second_flush_updates_it() {
    let mut panel = FakePanel::new();
    // A window left over from something else must not matter.
    panel.command(&[0x21, 10, 20, 0x22, 3, 4]);
    let mut oled = Ssd1306::new(panel, DEFAULT_ADDRESS);
    oled.init().unwrap();

    let mut fb = picture("Hello, panel");
    oled.flush(&fb).unwrap();
    let panel = oled.release();
    assert_eq!(panel.ram, fb.pages());
    assert_ne!(fb.pages(), [0; PAGE_BYTES]);

    let first_ram = panel.ram;
    let mut oled = Ssd1306::new(panel, DEFAULT_ADDRESS);
    fb.set_pixel(64, 32, true);
    fb.set_pixel(0, 0, false);
    oled.flush(&fb).unwrap();
    let panel = oled.release();
    assert_eq!(panel.ram, fb.pages());
    assert_ne!(panel.ram, first_ram);
}

#[test]
fn bus_errors_are_returned_not_panicked() {
    // Nobody at the address.
    let mut oled = Ssd1306::new(FakePanel::new(), 0x3D);
    assert_eq!(oled.init(), Err(Nack));
    assert_eq!(oled.flush(&Framebuffer::new()), Err(Nack));

    // The panel goes away half-way through a flush.
    let mut panel = FakePanel::new();
    panel.fail_from = Some(3);
    let mut oled = Ssd1306::new(panel, DEFAULT_ADDRESS);
    oled.init().unwrap();
    assert_eq!(oled.flush(&picture("x")), Err(Nack));
    assert_eq!(oled.set_contrast(10), Err(Nack));
}
