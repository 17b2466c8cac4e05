//! The async client: connect, handshake, call with a timeout, subscribe to events.
//!
//! One background task reads the socket and routes each response to the call waiting for
//! it (by id) and each notification to the [`EventStream`]; calls can run concurrently
//! on one connection. When the daemon goes away every waiting call fails with
//! [`ClientError::Disconnected`] and the event stream ends.

use crate::PROTOCOL_VERSION;
use crate::codec::{Frame, LineFrames};
use crate::error::{ErrorCode, RpcError};
use crate::events::{EventMessage, Topic};
use crate::jsonrpc::{Id, RequestFrame, ServerMessage};
use crate::methods::{HelloParams, HelloResult, Method, SubscribeParams, SubscribeResult, method};
use crate::ssh::{SshEndpoint, SshFailure};
use futures::StreamExt;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;

/// Largest line the client accepts from the daemon (a list of 100,000 strategies is big).
const MAX_RESPONSE_BYTES: usize = 512 * 1024 * 1024;

/// The byte streams a session runs over: a Unix socket's halves, or ssh's stdio.
type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Where a daemon is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Its Unix socket on this machine.
    Socket(PathBuf),
    /// A server reached over SSH ([`crate::ssh`]).
    Ssh(SshEndpoint),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
            Endpoint::Ssh(ssh) => match &ssh.socket {
                Some(socket) => write!(f, "ssh {}:{}", ssh.destination, socket.display()),
                None => write!(f, "ssh {}", ssh.destination),
            },
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent in `hello`, shows in the daemon's log.
    pub client_name: String,
    /// Ask for view-only access.
    pub read_only: bool,
    /// Default time a call waits for its answer.
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// A Freqtrade bot's credential (see [`HelloParams::credential`]).
    pub credential: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_name: format!("mem-protocol {}", env!("CARGO_PKG_VERSION")),
            read_only: false,
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            credential: None,
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no daemon answering at {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Rpc(RpcError),
    #[error("`{method}` got no answer within {} s", after.as_secs_f64())]
    Timeout { method: String, after: Duration },
    #[error("the daemon closed the connection")]
    Disconnected,
    #[error("could not read the daemon's answer to `{method}`: {detail}")]
    Decode { method: String, detail: String },
    #[error("already subscribed on this connection")]
    AlreadySubscribed,
    /// The SSH session to a server ended before memd answered.
    #[error("{destination}: {failure}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Ssh {
        destination: String,
        failure: SshFailure,
        /// ssh's (or the remote bridge's) last line on stderr.
        detail: String,
    },
    /// The daemon speaks another protocol version: nothing it sends can be read safely.
    #[error(
        "protocol version differs: memd speaks {server}, this memctl {client}; use a memctl from the same release as that memd"
    )]
    ProtocolVersion { server: u32, client: u32 },
}

impl ClientError {
    /// The protocol error code, when the daemon answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            ClientError::ProtocolVersion { .. } => Some(ErrorCode::IncompatibleVersion),
            _ => None,
        }
    }
}

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Result<Value, RpcError>>>>>;

/// A connection to memd that has completed the handshake.
pub struct Client {
    writer: tokio::sync::Mutex<Writer>,
    pending: Pending,
    next_id: AtomicI64,
    closed: Arc<AtomicBool>,
    /// Becomes true when the read loop has read everything the daemon sent.
    read_done: tokio::sync::watch::Receiver<bool>,
    /// An error the daemon sent without tying it to a request (a refused peer, a frame it
    /// could not read) when no call was waiting: the reason the connection ended.
    closing_error: Arc<Mutex<Option<RpcError>>>,
    events: Mutex<Option<mpsc::UnboundedReceiver<EventMessage>>>,
    hello: HelloResult,
    endpoint: Endpoint,
    /// The `ssh` process a remote session runs through (killed when the client drops).
    _transport: Option<tokio::process::Child>,
    /// The read loop, which holds the connection's read half: ended when the client
    /// drops, so that a dropped client closes its connection (the write half alone does
    /// not, and a subscribed daemon never would).
    reader: tokio::task::AbortHandle,
    call_timeout: Duration,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Events received after [`Client::subscribe`], in the order the daemon sent them.
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<EventMessage>,
}

impl EventStream {
    /// The next event; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<EventMessage> {
        self.rx.recv().await
    }
}

impl Client {
    /// Connects to the socket at `path` and says hello.
    pub async fn connect(path: &Path, options: ClientOptions) -> Result<Client, ClientError> {
        let connect_err = |source: io::Error| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let name = path.to_fs_name::<GenericFilePath>().map_err(connect_err)?;
        let stream = tokio::time::timeout(options.connect_timeout, Stream::connect(name))
            .await
            .map_err(|_| connect_err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))?
            .map_err(connect_err)?;
        let (recv, send) = tokio::io::split(stream);
        let endpoint = Endpoint::Socket(path.to_path_buf());
        Client::start(Box::new(recv), Box::new(send), endpoint, None, options).await
    }

    /// Connects to `endpoint`: a local socket, or a server over SSH.
    pub async fn connect_to(
        endpoint: &Endpoint,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let ssh = match endpoint {
            Endpoint::Socket(path) => return Client::connect(path, options).await,
            Endpoint::Ssh(ssh) => ssh,
        };
        let session = ssh.spawn().map_err(|e| ClientError::Ssh {
            destination: ssh.destination.clone(),
            failure: SshFailure::NoSshClient,
            detail: e.to_string(),
        })?;
        let crate::ssh::SshSession {
            child,
            stdin,
            stdout,
            stderr,
        } = session;
        let started = Client::start(
            Box::new(stdout),
            Box::new(stdin),
            endpoint.clone(),
            None,
            options,
        )
        .await;
        match started {
            Ok(mut client) => {
                client._transport = Some(child);
                // ssh's stderr is drained so a chatty server never blocks the session.
                tokio::spawn(async move {
                    let mut stderr = stderr;
                    let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
                });
                Ok(client)
            }
            // The session ended before memd answered: ssh and the bridge say why.
            Err(ClientError::Disconnected) | Err(ClientError::Timeout { .. }) => {
                let mut child = child;
                // ssh closes its stdout a moment before it exits with the status that
                // says why; one still running after that will not answer now.
                let exited = tokio::time::timeout(Duration::from_secs(3), child.wait()).await;
                if exited.is_err() {
                    let _ = child.start_kill();
                }
                let (failure, detail) = crate::ssh::ended(child, stderr).await;
                Err(ClientError::Ssh {
                    destination: ssh.destination.clone(),
                    failure,
                    detail,
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Says hello over an open byte stream and starts reading it.
    async fn start(
        recv: Reader,
        send: Writer,
        endpoint: Endpoint,
        transport: Option<tokio::process::Child>,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let closing_error = Arc::new(Mutex::new(None));
        let (pending_for_reader, closed_for_reader, closing_for_reader) =
            (pending.clone(), closed.clone(), closing_error.clone());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (done_tx, read_done) = tokio::sync::watch::channel(false);
        let reader = tokio::spawn(async move {
            read_loop(
                recv,
                pending_for_reader,
                closed_for_reader,
                closing_for_reader,
                events_tx,
            )
            .await;
            let _ = done_tx.send(true);
        })
        .abort_handle();
        let mut client = Client {
            writer: tokio::sync::Mutex::new(send),
            pending,
            next_id: AtomicI64::new(1),
            closed,
            read_done,
            closing_error,
            events: Mutex::new(Some(events_rx)),
            hello: HelloResult {
                protocol_version: 0,
                server: String::new(),
                server_version: String::new(),
                pid: 0,
                access: crate::Access::View,
            },
            endpoint,
            _transport: transport,
            reader,
            call_timeout: options.call_timeout,
        };
        let hello = client
            .call_with_timeout::<method::Hello>(
                HelloParams {
                    protocol_version: PROTOCOL_VERSION,
                    client: Some(options.client_name),
                    read_only: options.read_only,
                    credential: options.credential.clone(),
                },
                options.call_timeout.max(options.connect_timeout),
            )
            .await;
        client.hello = match hello {
            Ok(hello) => hello,
            Err(ClientError::Rpc(rpc)) if rpc.code == ErrorCode::IncompatibleVersion => {
                let server = rpc
                    .data
                    .as_ref()
                    .and_then(|d| d.get("serverProtocolVersion"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0) as u32;
                return Err(ClientError::ProtocolVersion {
                    server,
                    client: PROTOCOL_VERSION,
                });
            }
            Err(e) => return Err(e),
        };
        Ok(client)
    }

    /// What the daemon said in the handshake (its version, pid, our access level).
    pub fn hello(&self) -> &HelloResult {
        &self.hello
    }

    /// Where this client is connected.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Whether the daemon has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Calls a method with typed params and result, waiting the default timeout.
    pub async fn call<M: Method>(&self, params: M::Params) -> Result<M::Result, ClientError> {
        self.call_with_timeout::<M>(params, self.call_timeout).await
    }

    /// Calls a method, waiting at most `timeout` for the answer.
    pub async fn call_with_timeout<M: Method>(
        &self,
        params: M::Params,
        timeout: Duration,
    ) -> Result<M::Result, ClientError> {
        let params = serde_json::to_value(params).map_err(|e| ClientError::Decode {
            method: M::NAME.into(),
            detail: e.to_string(),
        })?;
        let value = self
            .call_value_with_timeout(M::NAME, params, timeout)
            .await?;
        serde_json::from_value(value).map_err(|e| ClientError::Decode {
            method: M::NAME.into(),
            detail: e.to_string(),
        })
    }

    /// Calls a method by name with untyped params (for scripts and tests).
    pub async fn call_value(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.call_value_with_timeout(method, params, self.call_timeout)
            .await
    }

    async fn call_value_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        if self.is_closed() {
            return Err(self.disconnected().await);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let line = RequestFrame {
            id: Some(Id::Number(id)),
            method: method.into(),
            params: Some(params),
        }
        .to_line();
        let written = {
            let mut writer = self.writer.lock().await;
            writer.write_all(&line).await
        };
        if written.is_err() {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(self.disconnected().await);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(rpc))) => Err(ClientError::Rpc(rpc)),
            Ok(Err(_)) => Err(self.disconnected().await),
            Err(_) => {
                self.pending.lock().expect("pending lock").remove(&id);
                Err(ClientError::Timeout {
                    method: method.into(),
                    after: timeout,
                })
            }
        }
    }

    /// Why the connection is gone: the daemon's last unsolicited error, if it sent one.
    async fn disconnected(&self) -> ClientError {
        // The daemon's last words may still be in the socket: let the reader finish.
        let mut done = self.read_done.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), done.wait_for(|d| *d)).await;
        match self
            .closing_error
            .lock()
            .expect("closing error lock")
            .clone()
        {
            Some(error) => ClientError::Rpc(error),
            None => ClientError::Disconnected,
        }
    }

    /// Subscribes to `topics` (empty: all). Returns the snapshot and the stream of events
    /// that follow it. Once per connection.
    pub async fn subscribe(
        &self,
        topics: Vec<Topic>,
    ) -> Result<(SubscribeResult, EventStream), ClientError> {
        let rx = self
            .events
            .lock()
            .expect("events lock")
            .take()
            .ok_or(ClientError::AlreadySubscribed)?;
        let result = self
            .call::<method::EventsSubscribe>(SubscribeParams { topics })
            .await?;
        Ok((result, EventStream { rx }))
    }
}

/// Reads everything the daemon sends until the connection closes.
async fn read_loop(
    recv: Reader,
    pending: Pending,
    closed: Arc<AtomicBool>,
    closing_error: Arc<Mutex<Option<RpcError>>>,
    events: mpsc::UnboundedSender<EventMessage>,
) {
    let mut frames = FramedRead::new(recv, LineFrames::new(MAX_RESPONSE_BYTES));
    while let Some(Ok(frame)) = frames.next().await {
        let Frame::Line(line) = frame else { continue };
        match ServerMessage::parse(&line) {
            Ok(ServerMessage::Response(response)) => {
                let waiter = match response.id {
                    Id::Number(id) => pending.lock().expect("pending lock").remove(&id),
                    _ => None,
                };
                if let Some(waiter) = waiter {
                    let _ = waiter.send(response.outcome);
                } else if let Err(error) = response.outcome {
                    // An error the daemon could not tie to a request: fail the oldest
                    // waiting call rather than hang it, or keep it as the reason the
                    // connection is about to end.
                    let oldest = {
                        let mut pending = pending.lock().expect("pending lock");
                        let id = pending.keys().min().copied();
                        id.and_then(|id| pending.remove(&id))
                    };
                    match oldest {
                        Some(waiter) => {
                            let _ = waiter.send(Err(error));
                        }
                        None => *closing_error.lock().expect("closing error lock") = Some(error),
                    }
                }
            }
            Ok(ServerMessage::Notification(notification)) => {
                if let Ok(event) = EventMessage::from_notification(&notification) {
                    let _ = events.send(event);
                }
            }
            Err(_) => {} // not ours to fix; the call waiting for it times out
        }
    }
    closed.store(true, Ordering::Release);
    pending.lock().expect("pending lock").clear(); // dropping the senders fails the waiting calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// A daemon of another release refuses the handshake and says its version: the
    /// client names both versions and reads nothing else from it.
    #[tokio::test]
    async fn a_daemon_of_another_protocol_version_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("memd.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let newer = PROTOCOL_VERSION + 1;
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut hello = String::new();
            BufReader::new(read).read_line(&mut hello).await.unwrap();
            let id = serde_json::from_str::<Value>(&hello).unwrap()["id"].clone();
            let error = RpcError::new(ErrorCode::IncompatibleVersion, "another release")
                .with_data(serde_json::json!({ "serverProtocolVersion": newer }));
            let answer = serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error });
            write
                .write_all(format!("{answer}\n").as_bytes())
                .await
                .unwrap();
        });
        let err = Client::connect(&socket, ClientOptions::default())
            .await
            .err()
            .expect("the handshake is refused");
        match err {
            ClientError::ProtocolVersion { server, client } => {
                assert_eq!((server, client), (newer, PROTOCOL_VERSION));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ClientError::ProtocolVersion {
                server: 2,
                client: 1
            }
            .to_string(),
            "protocol version differs: memd speaks 2, this memctl 1; use a memctl from the same release as that memd"
        );
    }

    /// A dropped client closes its connection, though the daemon would never close it
    /// (a subscription): a memctl that subscribes anew leaves no session behind.
    #[tokio::test]
    async fn a_dropped_client_closes_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("memd.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let daemon = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let hello = lines.next_line().await.unwrap().unwrap();
            let id = serde_json::from_str::<Value>(&hello).unwrap()["id"].clone();
            let result = serde_json::json!({"protocolVersion": PROTOCOL_VERSION,
                "server": "memd", "serverVersion": "0", "pid": 1, "access": "control"});
            let answer = serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result });
            write
                .write_all(format!("{answer}\n").as_bytes())
                .await
                .unwrap();
            // Open until the client closes it.
            lines.next_line().await.unwrap()
        });
        let client = Client::connect(&socket, ClientOptions::default())
            .await
            .unwrap();
        drop(client);
        let end = tokio::time::timeout(Duration::from_secs(5), daemon)
            .await
            .expect("the connection closed");
        assert_eq!(end.unwrap(), None, "closed, with nothing more sent");
    }
}
