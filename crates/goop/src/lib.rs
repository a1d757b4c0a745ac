//! goop: the peer. Config, peer folder setup and the commands of the `goop` binary.

pub mod answer;
pub mod config;
pub mod init;
pub mod local;
pub mod http;
pub mod store;
