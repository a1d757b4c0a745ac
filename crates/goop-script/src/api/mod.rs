//! The `goop` API core that every script sees: json, kv, log, route/owner (and `goop.commands()` in `vm`).

pub mod json;
pub mod kv;
pub mod kv_store;
pub mod log;
pub mod route;
