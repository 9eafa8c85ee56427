//! What an uploaded floor-plan image is, from its bytes alone (never its file name or the
//! browser's content type): PNG or JPEG by their magic bytes, with the pixel size read from
//! the header. SVG and every other type are refused in words: SVG can carry script, and the
//! console serves only what it recognised, with that type and `nosniff`. Pure: no IO.

/// Largest image accepted (a floor plan exported at a readable resolution fits easily).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// Largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 10_000;

/// The two image types a floor plan may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    Png,
    Jpeg,
}

impl ImageKind {
    /// The `Content-Type` the image is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
        }
    }
}

/// A recognised image: its type and size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFacts {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];

/// Checks `bytes` as a floor-plan image; the error is a sentence for the admin.
pub fn recognise(bytes: &[u8]) -> Result<ImageFacts, String> {
    if bytes.is_empty() {
        return Err("Choose an image file (PNG or JPEG).".into());
    }
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "The image is {} — at most {} is accepted. Export the plan at a smaller size.",
            megabytes(bytes.len()),
            megabytes(MAX_BYTES)
        ));
    }
    let (kind, size) = if bytes.starts_with(PNG_MAGIC) {
        (ImageKind::Png, png_size(bytes))
    } else if bytes.starts_with(JPEG_MAGIC) {
        (ImageKind::Jpeg, jpeg_size(bytes))
    } else {
        return Err(format!(
            "The file is not a PNG or JPEG image ({}). Save the plan as PNG or JPEG.",
            what_it_looks_like(bytes)
        ));
    };
    let Some((width, height)) = size else {
        return Err(format!(
            "The file starts like a {} image but its header cannot be read (damaged or cut short?).",
            kind_name(kind)
        ));
    };
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "The image is {width}×{height} pixels; each side must be 1 to {MAX_SIDE}."
        ));
    }
    Ok(ImageFacts {
        kind,
        width,
        height,
    })
}

fn kind_name(kind: ImageKind) -> &'static str {
    match kind {
        ImageKind::Png => "PNG",
        ImageKind::Jpeg => "JPEG",
    }
}

/// `1.5 MB` (binary megabytes, as the limit is counted).
fn megabytes(bytes: usize) -> String {
    let mb = bytes as f64 / (1024.0 * 1024.0);
    format!("{mb:.1} MB")
}

/// A guess at what a refused file is, for the message.
fn what_it_looks_like(bytes: &[u8]) -> &'static str {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |at| &text[at..]);
    let head = String::from_utf8_lossy(&start[..start.len().min(512)]).to_ascii_lowercase();
    if head.starts_with('<') && head.contains("<svg") {
        "it is SVG, which is refused because it can carry scripts"
    } else if head.starts_with('<') {
        "it looks like HTML or XML"
    } else if start.starts_with(b"GIF8") {
        "it is GIF"
    } else if start.starts_with(b"RIFF") && start.get(8..12) == Some(b"WEBP") {
        "it is WebP"
    } else if start.starts_with(b"%PDF") {
        "it is PDF"
    } else {
        "its type is not recognised"
    }
}

/// Width and height from a PNG's header (IHDR, checksum checked by the `png` crate).
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let info = decoder.read_header_info().ok()?;
    Some((info.width, info.height))
}

/// Width and height from a JPEG's first start-of-frame segment.
fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2; // after SOI
    loop {
        // A marker: one or more 0xFF, then its code.
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        while *bytes.get(at)? == 0xFF {
            at += 1;
        }
        let code = *bytes.get(at)?;
        at += 1;
        match code {
            // Markers without a length: TEM, RSTn.
            0x01 | 0xD0..=0xD7 => continue,
            // End of image or start of scan before any frame header.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        if length < 2 {
            return None;
        }
        let is_frame = matches!(code, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_frame {
            // length (2), precision (1), height (2), width (2)
            let height = u16::from_be_bytes([*bytes.get(at + 3)?, *bytes.get(at + 4)?]);
            let width = u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?]);
            return Some((u32::from(width), u32::from(height)));
        }
        at += length;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real PNG of `width`×`height` (grey, one bit).
    pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let Ok(mut writer) = encoder.write_header() else {
                return Vec::new();
            };
            let _ = writer.write_image_data(&vec![200u8; (width * height) as usize]);
        }
        out
    }

    /// The head of a baseline JPEG of `width`×`height`: SOI, an APP0 segment, SOF0.
    fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    #[test]
    fn png_and_jpeg_are_recognised_with_their_size() {
        assert_eq!(
            recognise(&png(40, 30)),
            Ok(ImageFacts {
                kind: ImageKind::Png,
                width: 40,
                height: 30
            })
        );
        assert_eq!(
            recognise(&jpeg(1200, 800)),
            Ok(ImageFacts {
                kind: ImageKind::Jpeg,
                width: 1200,
                height: 800
            })
        );
    }

    #[test]
    fn the_bytes_decide_not_the_name_and_svg_is_refused() {
        let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        let refused = recognise(svg).err().unwrap_or_default();
        assert!(refused.contains("SVG"), "{refused}");
        assert!(recognise(b"GIF89a....")
            .err()
            .is_some_and(|e| e.contains("GIF")));
        assert!(recognise(b"plain text")
            .err()
            .is_some_and(|e| e.contains("not a PNG or JPEG")));
        assert!(recognise(b"").err().is_some_and(|e| e.contains("Choose")));
    }

    #[test]
    fn damaged_huge_and_too_large_images_are_refused_in_words() {
        let mut cut = png(40, 30);
        cut.truncate(20);
        assert!(recognise(&cut)
            .err()
            .is_some_and(|e| e.contains("cannot be read")));
        let mut bad_crc = png(40, 30);
        bad_crc[29] ^= 0xFF;
        assert!(recognise(&bad_crc).is_err());
        assert!(recognise(&jpeg(20_000, 10))
            .err()
            .is_some_and(|e| e.contains("20000×10")));
        let mut big = png(40, 30);
        big.resize(MAX_BYTES + 1, 0);
        let refused = recognise(&big).err().unwrap_or_default();
        assert!(refused.contains("2.0 MB"), "{refused}");
        assert!(recognise(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
    }
}
