//! Error codes and the JSON-RPC error object.
//!
//! Codes -32700..-32600 are JSON-RPC 2.0's own; memd's codes live in -32000..-32099, the
//! range the specification reserves for implementation-defined server errors.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// What went wrong, as a stable number a script can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame is not valid UTF-8 or not valid JSON.
    ParseError,
    /// Valid JSON, but not a JSON-RPC 2.0 request (or a batch, which memd does not take).
    InvalidRequest,
    /// No such method.
    MethodNotFound,
    /// The method exists but its params are wrong; the message names the field.
    InvalidParams,
    /// A bug or an I/O failure inside the daemon.
    InternalError,
    /// The frame is longer than the limit; the rest of the line was discarded.
    FrameTooLarge,
    /// The method is part of the protocol but its subsystem is not built yet.
    NotImplemented,
    /// The first request on a connection must be `hello`.
    HandshakeRequired,
    /// Client and daemon speak different protocol versions.
    IncompatibleVersion,
    /// The thing asked for (a strategy id, ...) does not exist.
    NotFound,
    /// The peer is not allowed this method (view-only access, or not allowed at all).
    PermissionDenied,
    /// The request conflicts with the current state (already exists, already deployed).
    Conflict,
    /// Something the daemon needs is missing (Freqtrade not installed, ...).
    Unavailable,
    /// A code this version does not know (from a newer daemon).
    Other(i32),
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub fn code(self) -> i32 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::FrameTooLarge => -32000,
            ErrorCode::NotImplemented => -32001,
            ErrorCode::HandshakeRequired => -32002,
            ErrorCode::IncompatibleVersion => -32003,
            ErrorCode::NotFound => -32004,
            ErrorCode::PermissionDenied => -32005,
            ErrorCode::Conflict => -32006,
            ErrorCode::Unavailable => -32007,
            ErrorCode::Other(code) => code,
        }
    }

    /// The code for a number read off the wire.
    pub fn from_code(code: i32) -> Self {
        match code {
            -32700 => ErrorCode::ParseError,
            -32600 => ErrorCode::InvalidRequest,
            -32601 => ErrorCode::MethodNotFound,
            -32602 => ErrorCode::InvalidParams,
            -32603 => ErrorCode::InternalError,
            -32000 => ErrorCode::FrameTooLarge,
            -32001 => ErrorCode::NotImplemented,
            -32002 => ErrorCode::HandshakeRequired,
            -32003 => ErrorCode::IncompatibleVersion,
            -32004 => ErrorCode::NotFound,
            -32005 => ErrorCode::PermissionDenied,
            -32006 => ErrorCode::Conflict,
            -32007 => ErrorCode::Unavailable,
            other => ErrorCode::Other(other),
        }
    }

    /// A short lowercase name for human output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse error",
            ErrorCode::InvalidRequest => "invalid request",
            ErrorCode::MethodNotFound => "method not found",
            ErrorCode::InvalidParams => "invalid params",
            ErrorCode::InternalError => "internal error",
            ErrorCode::FrameTooLarge => "frame too large",
            ErrorCode::NotImplemented => "not implemented yet",
            ErrorCode::HandshakeRequired => "handshake required",
            ErrorCode::IncompatibleVersion => "incompatible protocol version",
            ErrorCode::NotFound => "not found",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Other(_) => "error",
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i32::deserialize(d).map(ErrorCode::from_code)
    }
}

/// The JSON-RPC error object: a code, a message a person can act on, optional data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches machine-readable details.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ParseError, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            ErrorCode::MethodNotFound,
            format!("unknown method `{method}`"),
        )
    }

    pub fn invalid_params(method: &str, detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidParams,
            format!("invalid params for `{method}`: {detail}"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }

    pub fn not_implemented(method: &str, planned_in: &str) -> Self {
        Self::new(
            ErrorCode::NotImplemented,
            format!("`{method}` is not implemented yet (planned: {planned_in})"),
        )
    }

    pub fn frame_too_large(len: usize, max: usize) -> Self {
        Self::new(
            ErrorCode::FrameTooLarge,
            format!("frame of more than {max} bytes rejected ({len} bytes read before the limit); the rest of the line was discarded"),
        )
        .with_data(serde_json::json!({ "maxBytes": max }))
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.name(),
            self.code.code(),
            self.message
        )
    }
}

impl std::error::Error for RpcError {}
