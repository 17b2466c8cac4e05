//! JSON-RPC 2.0 envelopes: requests, responses and notifications, and their strict parsing.
//!
//! Parsing is done by hand from a `serde_json::Value` so that every way a frame can be
//! wrong gets its own message naming the problem (a missing `method`, a float id, ...).

use crate::error::RpcError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A request id: a number or a string, or `null` when the request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Number(i64),
    String(String),
    Null,
}

/// One request (with an id) or notification (without) sent by a client.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFrame {
    /// `None` for a notification: no response is sent for it.
    pub id: Option<Id>,
    pub method: String,
    /// `None` when the request had no `params` member.
    pub params: Option<Value>,
}

impl RequestFrame {
    /// Encodes the request as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut obj = Map::new();
        obj.insert("jsonrpc".into(), Value::from("2.0"));
        if let Some(id) = &self.id {
            obj.insert(
                "id".into(),
                serde_json::to_value(id).expect("ids serialize"),
            );
        }
        obj.insert("method".into(), Value::from(self.method.clone()));
        if let Some(params) = &self.params {
            obj.insert("params".into(), params.clone());
        }
        to_line(&Value::Object(obj))
    }

    /// Reads a request from one frame's bytes. On failure, the error comes with the id
    /// when one could be recovered, so the reply can carry it.
    pub fn parse(bytes: &[u8]) -> Result<RequestFrame, (Id, RpcError)> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            (
                Id::Null,
                RpcError::parse_error(format!(
                    "frame is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                )),
            )
        })?;
        let value: Value = serde_json::from_str(text).map_err(|e| {
            (
                Id::Null,
                RpcError::parse_error(format!("frame is not valid JSON: {e}")),
            )
        })?;
        Self::from_value(value)
    }

    /// Checks a parsed JSON value against the JSON-RPC 2.0 request rules.
    pub fn from_value(value: Value) -> Result<RequestFrame, (Id, RpcError)> {
        let mut obj = match value {
            Value::Object(obj) => obj,
            Value::Array(_) => {
                return Err((
                    Id::Null,
                    RpcError::invalid_request(
                        "batch requests (JSON arrays) are not supported; send one request per line",
                    ),
                ));
            }
            other => {
                return Err((
                    Id::Null,
                    RpcError::invalid_request(format!(
                        "a request must be a JSON object, got {}",
                        kind(&other)
                    )),
                ));
            }
        };
        let id = match obj.remove("id") {
            None => None,
            Some(Value::Null) => Some(Id::Null),
            Some(Value::String(s)) => Some(Id::String(s)),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(n) => Some(Id::Number(n)),
                None => {
                    return Err((
                        Id::Null,
                        RpcError::invalid_request(format!(
                            "`id` must be an integer or a string, got {n}"
                        )),
                    ));
                }
            },
            Some(other) => {
                return Err((
                    Id::Null,
                    RpcError::invalid_request(format!(
                        "`id` must be an integer or a string, got {}",
                        kind(&other)
                    )),
                ));
            }
        };
        let reply_id = id.clone().unwrap_or(Id::Null);
        match obj.remove("jsonrpc") {
            Some(Value::String(v)) if v == "2.0" => {}
            Some(other) => {
                return Err((
                    reply_id,
                    RpcError::invalid_request(format!("`jsonrpc` must be \"2.0\", got {other}")),
                ));
            }
            None => {
                return Err((
                    reply_id,
                    RpcError::invalid_request("missing `jsonrpc`: \"2.0\""),
                ));
            }
        }
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m,
            Some(other) => {
                return Err((
                    reply_id,
                    RpcError::invalid_request(format!(
                        "`method` must be a string, got {}",
                        kind(&other)
                    )),
                ));
            }
            None => return Err((reply_id, RpcError::invalid_request("missing `method`"))),
        };
        let params = match obj.remove("params") {
            None => None,
            Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
            Some(other) => {
                return Err((
                    reply_id,
                    RpcError::invalid_request(format!(
                        "`params` must be an object or an array, got {}",
                        kind(&other)
                    )),
                ));
            }
        };
        if let Some(extra) = obj.keys().next() {
            return Err((
                reply_id,
                RpcError::invalid_request(format!("unexpected member `{extra}` in request")),
            ));
        }
        Ok(RequestFrame { id, method, params })
    }
}

/// A well-formed request read straight from its bytes, its params left unparsed: the
/// fast path for the common case. Anything unusual (no id, escapes in the method name,
/// extra members, `params` that are not an object or an array, a malformed frame) returns
/// `None`, and [`RequestFrame::parse`] then reads the frame slowly and words the error.
///
/// One exception: params are only scanned here, not read, so a number in them beyond
/// `f64`'s range (`1e999`) is not seen; [`Request::parse_raw`](crate::Request::parse_raw)
/// then rejects the params as invalid ("number out of range") if it knows the method,
/// where the slow path rejects the whole frame as not valid JSON. Either way the request
/// is refused.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastFrame<'a> {
    jsonrpc: &'a str,
    pub id: Id,
    pub method: &'a str,
    #[serde(default, borrow, deserialize_with = "present")]
    pub params: Option<&'a serde_json::value::RawValue>,
}

/// A member as written, `null` included: a plain `Option<&RawValue>` reads `"params": null`
/// as no params, which [`RequestFrame::from_value`] rejects, so the fast path would accept
/// a frame the slow path refuses.
fn present<'de, D>(deserializer: D) -> Result<Option<&'de serde_json::value::RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <&'de serde_json::value::RawValue>::deserialize(deserializer).map(Some)
}

impl<'a> FastFrame<'a> {
    pub fn parse(bytes: &'a [u8]) -> Option<FastFrame<'a>> {
        let frame: FastFrame<'a> = serde_json::from_slice(bytes).ok()?;
        if frame.jsonrpc != "2.0" {
            return None;
        }
        if let Some(params) = frame.params {
            if !matches!(params.get().as_bytes().first(), Some(b'{' | b'[')) {
                return None;
            }
        }
        Some(frame)
    }
}

/// The daemon's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFrame {
    pub id: Id,
    pub outcome: Result<Value, RpcError>,
}

#[derive(Serialize, Deserialize)]
struct ResponseWire {
    jsonrpc: String,
    id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<RpcError>,
}

impl ResponseFrame {
    pub fn ok(id: Id, result: Value) -> Self {
        ResponseFrame {
            id,
            outcome: Ok(result),
        }
    }

    pub fn err(id: Id, error: RpcError) -> Self {
        ResponseFrame {
            id,
            outcome: Err(error),
        }
    }

    /// Encodes the response as one line, newline included (serialized from borrows: a
    /// large result is not copied first).
    pub fn to_line(&self) -> Vec<u8> {
        response_line(&self.id, self.outcome.as_ref())
    }
}

/// One response line, newline included, for a result of any serializable type: the daemon
/// passes results it has already serialized (`RawValue`), so they are not built as a
/// `Value` tree first.
pub fn response_line<R: Serialize + ?Sized>(id: &Id, outcome: Result<&R, &RpcError>) -> Vec<u8> {
    #[derive(Serialize)]
    struct WireRef<'a, R: ?Sized> {
        jsonrpc: &'static str,
        id: &'a Id,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a R>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a RpcError>,
    }
    let (result, error) = match outcome {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    to_line(&WireRef {
        jsonrpc: "2.0",
        id,
        result,
        error,
    })
}

/// A message pushed by the daemon without a request: an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationFrame {
    pub jsonrpc: String,
    pub method: String,
    pub params: Value,
}

impl NotificationFrame {
    pub fn new(method: impl Into<String>, params: Value) -> Self {
        NotificationFrame {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
        }
    }

    /// Encodes the notification as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self)
    }
}

/// Anything a client can receive: a response to one of its requests, or a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Response(ResponseFrame),
    Notification(NotificationFrame),
}

impl ServerMessage {
    /// Reads one line sent by the daemon.
    pub fn parse(bytes: &[u8]) -> Result<ServerMessage, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("daemon sent invalid JSON: {e}"))?;
        if value.get("method").is_some() {
            let n: NotificationFrame = serde_json::from_value(value)
                .map_err(|e| format!("daemon sent a malformed notification: {e}"))?;
            return Ok(ServerMessage::Notification(n));
        }
        let wire: ResponseWire = serde_json::from_value(value)
            .map_err(|e| format!("daemon sent a malformed response: {e}"))?;
        let outcome = match (wire.result, wire.error) {
            (_, Some(e)) => Err(e),
            (Some(r), None) => Ok(r),
            (None, None) => Ok(Value::Null),
        };
        Ok(ServerMessage::Response(ResponseFrame {
            id: wire.id,
            outcome,
        }))
    }
}

fn to_line<T: Serialize>(value: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("protocol values always serialize");
    line.push(b'\n');
    line
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn request_round_trips() {
        for frame in [
            RequestFrame {
                id: Some(Id::Number(7)),
                method: "hello".into(),
                params: Some(json!({"protocolVersion": 1})),
            },
            RequestFrame {
                id: Some(Id::String("a".into())),
                method: "daemon.status".into(),
                params: None,
            },
            RequestFrame {
                id: None,
                method: "x".into(),
                params: Some(json!([1, 2])),
            },
            RequestFrame {
                id: Some(Id::Null),
                method: "x".into(),
                params: None,
            },
        ] {
            let line = frame.to_line();
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(RequestFrame::parse(&line[..line.len() - 1]).unwrap(), frame);
        }
    }

    #[test]
    fn response_round_trips() {
        for frame in [
            ResponseFrame::ok(Id::Number(1), json!({"a": 1})),
            ResponseFrame::err(Id::Null, RpcError::parse_error("bad")),
            ResponseFrame::err(
                Id::String("x".into()),
                RpcError::not_found("no").with_data(json!({"id": "x"})),
            ),
        ] {
            let line = frame.to_line();
            match ServerMessage::parse(&line).unwrap() {
                ServerMessage::Response(r) => assert_eq!(r, frame),
                other => panic!("expected a response, got {other:?}"),
            }
        }
    }

    #[test]
    fn notification_round_trips() {
        let n = NotificationFrame::new("daemon.stopping", json!({"seq": 1}));
        assert_eq!(
            ServerMessage::parse(&n.to_line()).unwrap(),
            ServerMessage::Notification(n)
        );
    }

    fn parse_err(text: &str) -> (Id, RpcError) {
        RequestFrame::parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn each_malformed_request_names_its_problem() {
        let cases: &[(&str, ErrorCode, &str)] = &[
            ("{", ErrorCode::ParseError, "not valid JSON"),
            ("[1]", ErrorCode::InvalidRequest, "batch"),
            ("3", ErrorCode::InvalidRequest, "must be a JSON object"),
            (
                r#"{"id":1,"method":"x"}"#,
                ErrorCode::InvalidRequest,
                "missing `jsonrpc`",
            ),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
                ErrorCode::InvalidRequest,
                "`jsonrpc` must be",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1}"#,
                ErrorCode::InvalidRequest,
                "missing `method`",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
                ErrorCode::InvalidRequest,
                "`method` must be a string",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
                ErrorCode::InvalidRequest,
                "`id` must be",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
                ErrorCode::InvalidRequest,
                "`params` must be",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","extra":3}"#,
                ErrorCode::InvalidRequest,
                "unexpected member `extra`",
            ),
        ];
        for (text, code, needle) in cases {
            let (_, err) = parse_err(text);
            assert_eq!(err.code, *code, "{text}");
            assert!(err.message.contains(needle), "{text}: {}", err.message);
        }
        let (id, _) = parse_err(r#"{"jsonrpc":"2.0","id":9}"#);
        assert_eq!(id, Id::Number(9), "the id is kept when it could be read");
    }

    /// Found by `protocol/tests/fuzz.rs`: the fast path read `"params": null` as no params
    /// (so `daemon.status` with null params succeeded), while the slow path rejects it.
    #[test]
    fn the_fast_path_leaves_null_params_to_the_slow_path() {
        let frame = br#"{"jsonrpc":"2.0","id":1,"method":"daemon.status","params":null}"#;
        assert!(FastFrame::parse(frame).is_none());
        let (id, err) = RequestFrame::parse(frame).unwrap_err();
        assert_eq!(id, Id::Number(1));
        assert!(err.message.contains("`params` must be"), "{}", err.message);
        // Present and absent params still take the fast path.
        let frame = br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":null}}"#;
        let fast = FastFrame::parse(frame).unwrap();
        assert_eq!(fast.params.map(|p| p.get()), Some(r#"{"a":null}"#));
        let fast = FastFrame::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#).unwrap();
        assert!(fast.params.is_none());
    }

    /// The documented exception: a number beyond `f64` inside params is refused as invalid
    /// params on the fast path, as invalid JSON on the slow one.
    #[test]
    fn an_out_of_range_number_in_params_is_refused_either_way() {
        let frame =
            br#"{"jsonrpc":"2.0","id":1,"method":"strategies.list","params":{"limit":1e999}}"#;
        let (_, slow) = RequestFrame::parse(frame).unwrap_err();
        assert_eq!(slow.code, ErrorCode::ParseError);
        let fast = FastFrame::parse(frame).unwrap();
        let err = crate::Request::parse_raw(fast.method, fast.params).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParams);
        assert!(
            err.message.contains("number out of range"),
            "{}",
            err.message
        );
    }

    #[test]
    fn invalid_utf8_is_a_parse_error_with_its_offset() {
        let (_, err) = RequestFrame::parse(b"{\"a\":\"\xff\"}").unwrap_err();
        assert_eq!(err.code, ErrorCode::ParseError);
        assert!(
            err.message.contains("UTF-8") && err.message.contains("offset 6"),
            "{}",
            err.message
        );
    }
}
