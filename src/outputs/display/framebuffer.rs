//! The 128×64 monochrome picture, kept in the SSD1306's own memory layout.

use std::convert::Infallible;

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Pixel, Size};

/// Panel width in pixels.
pub const WIDTH: u32 = 128;
/// Panel height in pixels.
pub const HEIGHT: u32 = 64;
/// Bytes in one full picture: 8 pages of 128 columns, one bit per pixel.
pub const PAGE_BYTES: usize = (WIDTH * HEIGHT / 8) as usize;

/// A 128×64 one-bit picture. Byte `page * 128 + x` holds column `x` of rows
/// `page * 8 .. page * 8 + 8`, least significant bit at the top, exactly as the SSD1306 stores
/// it in horizontal addressing mode. Drawing outside the panel is clipped, never a panic.
#[derive(Clone, PartialEq, Eq)]
pub struct Framebuffer {
    pages: [u8; PAGE_BYTES],
}

impl Default for Framebuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Framebuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lit = self.pages.iter().map(|b| b.count_ones()).sum::<u32>();
        write!(f, "Framebuffer({WIDTH}x{HEIGHT}, {lit} pixels on)")
    }
}

impl Framebuffer {
    /// An all-dark picture.
    pub fn new() -> Self {
        Self {
            pages: [0; PAGE_BYTES],
        }
    }

    /// The picture in SSD1306 page layout (see [`Framebuffer`]).
    pub fn pages(&self) -> [u8; PAGE_BYTES] {
        self.pages
    }

    /// Whether the pixel at (`x`, `y`) is lit; `false` outside the panel.
    pub fn pixel(&self, x: u32, y: u32) -> bool {
        Self::index(x, y).is_some_and(|(i, bit)| self.pages[i] & bit != 0)
    }

    /// Lights or darkens the pixel at (`x`, `y`); ignored outside the panel.
    pub fn set_pixel(&mut self, x: u32, y: u32, on: bool) {
        if let Some((i, bit)) = Self::index(x, y) {
            if on {
                self.pages[i] |= bit;
            } else {
                self.pages[i] &= !bit;
            }
        }
    }

    fn index(x: u32, y: u32) -> Option<(usize, u8)> {
        (x < WIDTH && y < HEIGHT).then(|| ((y / 8 * WIDTH + x) as usize, 1 << (y % 8)))
    }
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Framebuffer {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) {
                self.set_pixel(x, y, color.is_on());
            }
        }
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        self.pages = [if color.is_on() { 0xFF } else { 0 }; PAGE_BYTES];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_layout_is_lsb_top_and_clips_outside() {
        let mut fb = Framebuffer::new();
        fb.set_pixel(0, 0, true);
        fb.set_pixel(5, 9, true);
        fb.set_pixel(127, 63, true);
        fb.set_pixel(128, 0, true);
        fb.set_pixel(0, 64, true);
        let pages = fb.pages();
        assert_eq!(pages[0], 0b0000_0001);
        assert_eq!(pages[128 + 5], 0b0000_0010);
        assert_eq!(pages[PAGE_BYTES - 1], 0b1000_0000);
        assert_eq!(pages.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
        assert!(fb.pixel(5, 9) && !fb.pixel(5, 8) && !fb.pixel(999, 9));
        fb.set_pixel(5, 9, false);
        assert!(!fb.pixel(5, 9));
    }
}
