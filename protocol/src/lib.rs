//! mem-protocol: everything that crosses memd's Unix socket.
//!
//! The wire format is JSON-RPC 2.0, one UTF-8 JSON message per `\n`-terminated line.
//! A client first calls `hello` with [`PROTOCOL_VERSION`]; every other method, its
//! parameters and its result are Rust types in [`methods`]; pushed notifications are
//! [`events::Event`]s; errors are [`error::RpcError`] with an [`error::ErrorCode`].
//! The async [`client::Client`] is shared by the CLI, the TUI and the tests.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit;
pub mod backtest;
pub mod backup;
pub mod client;
pub mod codec;
pub mod deploy;
pub mod deploy_spec;
pub mod error;
pub mod events;
#[cfg(feature = "generate")]
pub mod generate;
pub mod http;
pub mod jobs;
pub mod jsonrpc;
pub mod market;
pub mod mem;
pub mod methods;
pub mod ml;
pub mod numbers;
pub mod paths;
pub mod recommend;
pub mod registry;
pub mod risk;
pub mod search;
pub mod ssh;
pub mod strategy;

pub use client::{Client, ClientError, ClientOptions, Endpoint, EventStream};
pub use error::{ErrorCode, RpcError};
pub use events::{Event, EventMessage, Topic};
pub use methods::{Access, Method, Request};

/// The protocol version this crate speaks. A client and a daemon must agree on it exactly.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame (one line, without its newline) the daemon accepts after the handshake.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Largest frame accepted before the peer has completed `hello`: an untrusted peer gets
/// little room.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 64 * 1024;
