//! goop: the peer. Config, peer folder setup and the commands of the `goop` binary.

pub mod answer;
pub mod config;
pub mod control;
pub mod events;
pub mod group;
pub mod http;
pub mod identity;
pub mod init;
pub mod local;
pub mod node;
pub mod protocol;
pub mod relay;
pub mod remote;
pub mod run;
pub mod site_module;
pub mod store;
pub mod template_module;
pub mod templates;
pub mod viewer;
pub mod write_hooks;
