//! Groups: the host peer pushes messages to its members' pages, and pages send to the host's
//! scripts, with the host as the referee of everything.
//!
//! A page on a peer's origin joins through its own viewer and its own peer, which keeps one
//! libp2p stream to the host for all its groups (`link.rs`). The host keeps the members and a
//! bounded mailbox per member (`host.rs`, `mailbox.rs`); scripts send with `goop.group`
//! (`module.rs`) and hear joins, leaves and messages through `on_group_*` events.

pub mod host;
pub mod link;
pub mod mailbox;
pub mod module;
pub mod wire;

pub use host::Groups;
pub use link::{Links, Subscription};

/// The stream protocol members speak to a host.
pub const PROTOCOL: libp2p::StreamProtocol = libp2p::StreamProtocol::new("/goop/group/1.0.0");
/// Largest message, as JSON text, in either direction.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most groups one member (a peer) is in at one host.
pub const MAX_GROUPS_PER_MEMBER: usize = 16;
/// Messages waiting for one member (or one page) before the oldest are dropped.
pub const MAILBOX_MESSAGES: usize = 128;
/// Bytes of messages waiting for one member (or one page) before the oldest are dropped: 16
/// of the largest. A visitor's peer holds at most this per page it has in a group.
pub const MAILBOX_BYTES: usize = 1024 * 1024;
/// Messages per minute one member may send to a host's groups (10 a second).
pub const SENDS_PER_MINUTE: u32 = 600;
/// Longest group name.
pub const MAX_NAME_BYTES: usize = 64;

/// `on_group_join(name, peer)`: may refuse a member with `return false, "reason"`.
pub const JOIN: &str = "on_group_join";
/// `on_group_message(name, message)`: what a page sent; `goop.peer` is the sender.
pub const MESSAGE: &str = "on_group_message";
/// `on_group_leave(name, peer)`.
pub const LEAVE: &str = "on_group_leave";

/// Why a page could not join or send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The host (its scripts or its bounds) or this peer's own bounds said no: asking again
    /// the same way gets the same answer.
    #[error("{0}")]
    Refused(String),
    /// The host could not be reached or did not answer: worth trying again.
    #[error("{0}")]
    Unreachable(String),
}

/// A group name: 1 to 64 letters, digits and `-_.:`.
pub fn check_name(name: &str) -> Result<(), String> {
    let fits = !name.is_empty() && name.len() <= MAX_NAME_BYTES;
    if fits && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
        Ok(())
    } else {
        Err(format!("a group name is 1 to {MAX_NAME_BYTES} letters, digits and -_.: characters"))
    }
}
