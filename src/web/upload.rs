//! A `multipart/form-data` form (a file upload) read into memory: text fields and file
//! fields by name, each within a limit, so a form with an image is handled like any other
//! form. The body as a whole is limited by the route ([`warp::multipart::form`]'s
//! `max_length`); a route reads it only after it has checked the caller's session.

use std::collections::HashMap;

use futures_util::StreamExt;
use warp::multipart::FormData;
use warp::Buf;

use super::pages::Form;

/// Longest text field.
const TEXT_LIMIT: usize = 64 * 1024;
/// Most parts in one form.
const PARTS_LIMIT: usize = 16;

/// A form read from a multipart body.
#[derive(Debug, Default)]
pub struct Upload {
    /// The text fields (as an ordinary form has them).
    pub fields: Form,
    /// The file fields' bytes (empty when no file was chosen).
    pub files: HashMap<String, Vec<u8>>,
}

/// Reads `form`; the error is a sentence for the page.
pub async fn read(mut form: FormData) -> Result<Upload, String> {
    let unreadable = |e: warp::Error| {
        tracing::info!(error = %e, "console: an uploaded form cannot be read");
        "The form could not be read (the upload was cut short?). Try again.".to_string()
    };
    let mut upload = Upload::default();
    let mut parts = 0;
    while let Some(part) = form.next().await {
        let part = part.map_err(unreadable)?;
        parts += 1;
        if parts > PARTS_LIMIT {
            return Err("The form has more fields than it should.".into());
        }
        let name = part.name().to_string();
        let is_file = part.filename().is_some();
        let mut bytes = Vec::new();
        let mut data = part.stream();
        while let Some(chunk) = data.next().await {
            let mut chunk = chunk.map_err(unreadable)?;
            if !is_file && bytes.len() + chunk.remaining() > TEXT_LIMIT {
                return Err(format!("The field {name} is too long."));
            }
            while chunk.has_remaining() {
                let piece = chunk.chunk();
                let length = piece.len();
                bytes.extend_from_slice(piece);
                chunk.advance(length);
            }
        }
        if is_file {
            upload.files.insert(name, bytes);
        } else {
            upload
                .fields
                .insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(upload)
}
