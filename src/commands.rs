//! One-shot commands that read a file and print JSON: `beacon parse`.

use std::path::Path;

use serde_json::Value;

use crate::emergency::{self, ChatType, Context, ParseReport, Rules};
use crate::graph::crypto::{EncryptionKey, KeyRing};
use crate::graph::notification::{self, Item};

/// Exit code for input that cannot be read as a chat message.
pub const EXIT_UNREADABLE: i32 = 2;

/// Options of `beacon parse`.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub service_account: Option<String>,
    pub chat_type: Option<String>,
    /// PEM private key for a change-notification collection with `encryptedContent`.
    pub key: Option<std::path::PathBuf>,
}

/// Reads `file` (a chatMessage, or a notification collection with encrypted content and
/// `--key`), classifies it, and returns (JSON to print, exit code) or (message, exit 2).
pub fn parse(file: &Path, options: &ParseOptions, rules: &Rules) -> Result<(Value, i32), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    let message = if value.get("value").is_some_and(Value::is_array) {
        decrypt_collection(&bytes, options, file)?
    } else {
        value
    };
    let context = Context {
        chat_type: options.chat_type.as_deref().map(ChatType::parse),
        service_account_id: options.service_account.clone(),
        received_at: None,
    };
    let classification = emergency::classify(&message, &context, rules);
    let code = emergency::exit_code(&classification);
    if code == EXIT_UNREADABLE {
        return Err(format!("{}: {}", file.display(), classification.reason()));
    }
    Ok((
        ParseReport::from_classification(&classification).to_value(),
        code,
    ))
}

fn decrypt_collection(bytes: &[u8], options: &ParseOptions, file: &Path) -> Result<Value, String> {
    let items = notification::decode(bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let change = items
        .into_iter()
        .find_map(|i| match i {
            Ok(Item::Change(c)) => Some(c),
            _ => None,
        })
        .ok_or_else(|| {
            format!(
                "{}: the collection holds no chat-message change notification",
                file.display()
            )
        })?;
    let content = change.encrypted.ok_or_else(|| {
        format!(
            "{}: a basic notification carries no message (chat {} message {}); fetch it from Graph and parse the chatMessage",
            file.display(),
            change.chat_id,
            change.message_id
        )
    })?;
    let key_file = options.key.as_ref().ok_or_else(|| {
        format!(
            "{}: the notification is encrypted: pass --key PRIVATE_KEY.pem",
            file.display()
        )
    })?;
    let pem = std::fs::read(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let key = EncryptionKey::from_private_pem(&content.encryption_certificate_id, &pem)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let plain = KeyRing::new(vec![key])
        .decrypt(&content)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_slice(&plain)
        .map_err(|e| format!("{}: decrypted content is not JSON: {e}", file.display()))
}
