//! goop's peer-to-peer protocols: ids, size bounds, and what each message looks like.

pub mod chat;
pub mod codec;
pub mod data;
pub mod profile;
pub mod site;

use libp2p::StreamProtocol;

use codec::Bounds;

pub const CHAT: StreamProtocol = StreamProtocol::new("/goop/chat/1.0.0");
pub const DATA: StreamProtocol = StreamProtocol::new("/goop/data/1.0.0");
pub const SITE: StreamProtocol = StreamProtocol::new("/goop/site/1.0.0");
pub const PROFILE: StreamProtocol = StreamProtocol::new("/goop/profile/1.0.0");

/// A chat message is short text; its acknowledgement shorter.
pub const CHAT_BOUNDS: Bounds = Bounds { request: 8 * 1024, response: 1024 };
/// Data requests are small; answers carry up to 1000 rows / 1 MB of results plus framing.
pub const DATA_BOUNDS: Bounds = Bounds { request: 256 * 1024, response: 2 * 1024 * 1024 };
/// A path in, a file (up to 4 MB) out.
pub const SITE_BOUNDS: Bounds = Bounds { request: 2 * 1024, response: site::MAX_FILE + site::HEADER_ROOM };
/// A label each way.
pub const PROFILE_BOUNDS: Bounds = Bounds { request: 1024, response: 1024 };
