//! Text cut to a byte bound: on a character boundary, and copied no further than the bound.

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The first `max` bytes of `bytes` as text (invalid UTF-8 replaced): a bounded copy of a Lua
/// string, however long the string.
pub(crate) fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}
