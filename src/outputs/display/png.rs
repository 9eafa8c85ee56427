//! The framebuffer as a PNG: the web page's mirror of the display and the golden test images.

use super::framebuffer::{Framebuffer, HEIGHT, WIDTH};

/// Largest scale [`Framebuffer::to_png_scaled`] accepts (512×256 at ×4 is what the web uses).
pub const MAX_SCALE: u32 = 8;

impl Framebuffer {
    /// The picture as a 128×64 one-bit greyscale PNG (lit pixels white).
    pub fn to_png(&self) -> Vec<u8> {
        self.to_png_scaled(1)
    }

    /// The picture as a one-bit greyscale PNG, each pixel a `scale`×`scale` square; `scale` is
    /// clamped to `1..=`[`MAX_SCALE`].
    pub fn to_png_scaled(&self, scale: u32) -> Vec<u8> {
        let scale = scale.clamp(1, MAX_SCALE);
        let (width, height) = (WIDTH * scale, HEIGHT * scale);
        let row_bytes = width.div_ceil(8) as usize;
        let mut data = vec![0u8; row_bytes * height as usize];
        for (y, row) in data.chunks_exact_mut(row_bytes).enumerate() {
            for x in 0..width {
                if self.pixel(x / scale, y as u32 / scale) {
                    row[(x / 8) as usize] |= 0x80 >> (x % 8);
                }
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        // The sizes are fixed above and the sink is a Vec, so encoding cannot fail.
        let mut writer = encoder
            .write_header()
            .expect("PNG header for a fixed-size image");
        writer
            .write_image_data(&data)
            .expect("PNG data of exactly the declared size");
        writer.finish().expect("PNG end into a Vec");
        out
    }
}
