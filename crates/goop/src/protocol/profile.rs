//! `/goop/profile/1.0.0`: peers tell each other their display labels when they connect.
//!
//! The dialer sends `{"label":"…"}` right after connecting and gets the other side's in the
//! same shape. A label is display text, never identity.

use serde::{Deserialize, Serialize};

/// Longest label kept, in characters.
pub const MAX_LABEL: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub label: String,
}

pub fn encode(label: &str) -> Vec<u8> {
    serde_json::to_vec(&Profile { label: label.to_string() }).unwrap_or_default()
}

/// The label in an answer, cut to [`MAX_LABEL`] and without control characters.
pub fn parse(bytes: &[u8]) -> String {
    serde_json::from_slice::<Profile>(bytes)
        .map(|p| p.label.chars().filter(|c| !c.is_control()).take(MAX_LABEL).collect())
        .unwrap_or_default()
}
