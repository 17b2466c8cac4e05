//! The socket: bind (with stale-socket handling), accept, peer check, handshake, request
//! dispatch and event subscriptions.
//!
//! Per connection: one task reads frames and answers them, one task writes, and, once
//! subscribed, one task forwards events. Writes go through a bounded outbox; a subscriber
//! whose outbox is full (it stopped reading) is dropped, never waited for. A bad frame is
//! answered with an error and the connection carries on.

use crate::Daemon;
use crate::access::PeerIdentity;
use crate::datadir::{LockError, LockFile, ensure_dir};
use crate::registry::Caller;
use crate::router::{self, Asker, Work};
use bytes::Bytes;
use futures::StreamExt;
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::StreamCommon;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use mem_protocol::codec::{Frame, LineFrames};
use mem_protocol::jsonrpc::{FastFrame, Id, RequestFrame, ResponseFrame, response_line};
use mem_protocol::methods::{HelloParams, HelloResult, SubscribeParams, SubscribeResult};
use mem_protocol::{
    Access, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, PROTOCOL_VERSION, Request, RpcError, Topic,
};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Lines queued for one connection before a subscriber counts as not reading.
pub const OUTBOX_FRAMES: usize = 1024;
/// Requests of one connection being answered at once; past this, reading pauses.
const MAX_IN_FLIGHT: usize = 64;
/// Time a new connection has to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a closing connection has to flush what it has queued.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// A client whose answers cannot be queued for this long (its outbox full: it stopped
/// reading) is disconnected, so it cannot hold megabytes of answers for ever.
const REPLY_STALL_LIMIT: Duration = Duration::from_secs(10);

/// Why the socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another memd is already running on {} (pid {pid}); stop it first (systemctl stop memd, or kill {pid}) or give this one another --socket", socket.display())]
    AlreadyRunning { socket: PathBuf, pid: String },
    #[error("refusing to replace {}: it exists and is not a socket", .0.display())]
    NotASocket(PathBuf),
    #[error("cannot listen on {}: {source}", socket.display())]
    Io { socket: PathBuf, source: io::Error },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The listening socket. Dropping it removes the socket file (on shutdown and on panic).
pub struct BoundSocket {
    pub listener: Listener,
    pub path: PathBuf,
    _lock: LockFile,
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Opens the socket at `path`, mode 0660 in a 0750 directory. A socket file left by a
/// dead daemon is replaced; a live daemon on it is an error.
pub fn bind(path: &Path) -> Result<BoundSocket, BindError> {
    let io_err = |source| BindError::Io {
        socket: path.to_path_buf(),
        source,
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_dir(parent, 0o750)?;
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let lock = LockFile::acquire(&lock_path).map_err(|err| match err {
        LockError::Held { pid, .. } => BindError::AlreadyRunning {
            socket: path.to_path_buf(),
            pid,
        },
        LockError::Io { source, .. } => io_err(source),
    })?;
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                // Something listens without holding our lock (another build, another tool).
                return Err(BindError::AlreadyRunning {
                    socket: path.to_path_buf(),
                    pid: "unknown".into(),
                });
            }
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                warn!(socket = %path.display(), "replacing a stale socket left by a daemon that is gone");
                fs::remove_file(path).map_err(io_err)?;
            }
            Err(err) => return Err(io_err(err)),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_err(err)),
    }
    let name = path.to_fs_name::<GenericFilePath>().map_err(io_err)?;
    let listener = ListenerOptions::new()
        .name(name)
        .mode(0o660)
        .reclaim_name(false)
        .create_tokio()
        .map_err(io_err)?;
    // bind() applies the umask to the mode; set it exactly.
    fs::set_permissions(path, fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    Ok(BoundSocket {
        listener,
        path: path.to_path_buf(),
        _lock: lock,
    })
}

/// Accepts connections until `stop` is cancelled, serving each on its own task.
pub async fn accept_loop(
    daemon: Arc<Daemon>,
    socket: &BoundSocket,
    stop: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            accepted = socket.listener.accept() => match accepted {
                Ok(stream) => {
                    tracker.spawn(serve_connection(daemon.clone(), stream, stop.child_token()));
                }
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Per-connection state that the read loop owns.
struct Session {
    daemon: Arc<Daemon>,
    peer: PeerIdentity,
    /// What the peer's identity allows.
    granted: Access,
    /// Set by `hello`: `granted`, or less if the client asked for read-only or gave a
    /// bot's credential.
    access: Option<Access>,
    /// A bot's credential given in `hello`, checked again on every request (a stopped
    /// deployment's credential stops working at once).
    bot_credential: Option<String>,
    /// Who asks, for the audit log: the peer's uid and the client's name from `hello`.
    caller: Caller,
    subscribed: bool,
    out: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
    in_flight: Arc<Semaphore>,
}

async fn serve_connection(daemon: Arc<Daemon>, stream: Stream, cancel: CancellationToken) {
    let peer = match stream.peer_creds() {
        Ok(creds) => PeerIdentity {
            uid: creds.euid().unwrap_or(u32::MAX),
            gid: creds.egid().unwrap_or(u32::MAX),
            pid: creds.pid(),
            groups: Vec::new(),
        }
        .with_proc_groups(),
        Err(err) => {
            warn!(%err, "cannot read the peer's credentials; closing");
            return;
        }
    };
    let granted = daemon.access.classify(&peer);
    let (reader, writer) = tokio::io::split(stream);
    let (out, out_rx) = mpsc::channel::<Bytes>(OUTBOX_FRAMES);
    let mut writer_task = tokio::spawn(write_loop(writer, out_rx));

    let Some(granted) = granted else {
        warn!(uid = peer.uid, gid = peer.gid, pid = ?peer.pid, "refused a peer that is not allowed");
        let error = RpcError::permission_denied(format!(
            "uid {} (gid {}) may not use this memd; an administrator can allow it in the [access] section of memd.toml",
            peer.uid, peer.gid
        ));
        let _ = out
            .send(Bytes::from(ResponseFrame::err(Id::Null, error).to_line()))
            .await;
        drop(out);
        let _ = tokio::time::timeout(FLUSH_GRACE, writer_task).await;
        // Read what the peer already sent (its hello) until it hangs up: closing a Unix
        // socket with unread input resets the connection, and the peer could lose the
        // refusal before reading it.
        let mut reader = reader;
        let _ = tokio::time::timeout(FLUSH_GRACE, async {
            let mut buf = [0u8; 4096];
            while let Ok(n) = tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        return;
    };

    daemon.connections.fetch_add(1, Ordering::Relaxed);
    debug!(uid = peer.uid, pid = ?peer.pid, ?granted, "client connected");
    let caller = Caller {
        uid: Some(peer.uid),
        client: None,
    };
    let mut session = Session {
        daemon: daemon.clone(),
        peer,
        granted,
        access: None,
        bot_credential: None,
        caller,
        subscribed: false,
        out,
        cancel: cancel.clone(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    };
    let mut frames = FramedRead::new(reader, LineFrames::new(MAX_HANDSHAKE_FRAME_BYTES));
    let handshake_deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(handshake_deadline), if session.access.is_none() => {
                let error = RpcError::new(mem_protocol::ErrorCode::HandshakeRequired, "no `hello` within 10 s; closing the connection");
                session.reply(Some(Id::Null), Err(error)).await;
                break;
            }
            next = frames.next() => next,
        };
        match next {
            None => break,
            Some(Err(err)) => {
                debug!(%err, "connection read failed");
                break;
            }
            Some(Ok(Frame::TooLarge { bytes_seen })) => {
                let max = frames.decoder().max();
                session
                    .reply(
                        Some(Id::Null),
                        Err(RpcError::frame_too_large(bytes_seen, max)),
                    )
                    .await;
            }
            Some(Ok(Frame::Line(line))) => {
                if session.handle_line(&line).await {
                    frames.decoder_mut().set_max(MAX_FRAME_BYTES);
                }
            }
        }
    }
    // Stop the event forwarder, let queued lines flush, then give up on a peer that does
    // not read.
    cancel.cancel();
    drop(session);
    if tokio::time::timeout(FLUSH_GRACE, &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
    }
    daemon.connections.fetch_sub(1, Ordering::Relaxed);
}

impl Session {
    /// Answers one frame. Returns true when it completed the handshake.
    async fn handle_line(&mut self, line: &[u8]) -> bool {
        // The common case reads params straight from the frame's bytes; anything unusual
        // goes the slow way, which words every error precisely.
        let (id, parsed) = match FastFrame::parse(line) {
            Some(fast) => (Some(fast.id), Request::parse_raw(fast.method, fast.params)),
            None => match RequestFrame::parse(line) {
                Ok(frame) => (frame.id, Request::parse(&frame.method, frame.params)),
                Err((id, error)) => {
                    self.reply(Some(id), Err(error)).await;
                    return false;
                }
            },
        };
        // `id` None: a notification, which gets no answer.
        let request = match parsed {
            Ok(request) => request,
            Err(error) => {
                self.reply(id, Err(error)).await;
                return false;
            }
        };
        if let Request::Hello(params) = request {
            let result = self.hello(params);
            let done = result.is_ok();
            self.reply(id, result).await;
            return done;
        }
        let Some(access) = self.access else {
            let error = RpcError::new(
                mem_protocol::ErrorCode::HandshakeRequired,
                format!("call `hello` first, with {{\"protocolVersion\": {PROTOCOL_VERSION}}}"),
            );
            self.reply(id, Err(error)).await;
            return false;
        };
        let mut request = request;
        if access == Access::Bot {
            if let Err(error) = self.admit_bot(&mut request) {
                self.reply(id, Err(error)).await;
                return false;
            }
        } else if request.access() > access {
            let why = if self.granted > access {
                " (the client asked for read-only access)"
            } else {
                ""
            };
            let error = RpcError::permission_denied(format!(
                "`{}` needs control access; this connection has view access{why}",
                request.method()
            ));
            self.reply(id, Err(error)).await;
            return false;
        }
        let asker = Asker {
            access,
            caller: self.caller.clone(),
        };
        let method = request.method();
        match router::route(&self.daemon, request, asker) {
            Work::Now(answer) => self.reply(id, encode(*answer)).await,
            Work::Connection(request) => {
                let subscribed = match *request {
                    Request::EventsSubscribe(params) => {
                        self.subscribe(id.clone(), params, access).await
                    }
                    other => Err(RpcError::invalid_request(format!(
                        "`{}` was already answered on this connection",
                        other.method()
                    ))),
                };
                if let Err(error) = subscribed {
                    self.reply(id, Err(error)).await;
                }
            }
            work => {
                // Answered on a task of its own so one slow request does not hold up the
                // next; the semaphore bounds how many run per connection.
                let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                    return false;
                };
                let out = self.out.clone();
                let cancel = self.cancel.clone();
                tokio::spawn(async move {
                    let outcome = encode(work.finish(method).await);
                    send_reply(&out, &cancel, id, outcome).await;
                    drop(permit);
                });
            }
        }
        false
    }

    fn hello(&mut self, params: HelloParams) -> Result<Answer, RpcError> {
        if params.protocol_version != PROTOCOL_VERSION {
            return Err(RpcError::new(
                mem_protocol::ErrorCode::IncompatibleVersion,
                format!(
                    "this memd ({}) speaks protocol version {PROTOCOL_VERSION}, the client speaks {}; use a memctl from the same release as memd",
                    env!("CARGO_PKG_VERSION"),
                    params.protocol_version
                ),
            )
            .with_data(serde_json::json!({ "serverProtocolVersion": PROTOCOL_VERSION })));
        }
        self.bot_credential = None;
        // The audits name the client by what it said here (a bot: by its deployment).
        self.caller.client = params.client.as_deref().map(Into::into);
        let access = match (&params.credential, params.read_only) {
            (Some(credential), _) => self.bot_hello(credential, params.read_only)?,
            (None, true) => Access::View,
            (None, false) => self.granted,
        };
        self.access = Some(access);
        debug!(
            uid = self.peer.uid,
            pid = ?self.peer.pid,
            client = params.client.as_deref().unwrap_or("unnamed"),
            ?access,
            "client said hello"
        );
        Ok(serde_json::value::to_raw_value(&HelloResult {
            protocol_version: PROTOCOL_VERSION,
            server: "memd".into(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            access,
        })
        .expect("hello result serializes"))
    }

    /// `hello` with a bot's credential: [`Access::Bot`], for a peer that would have had
    /// control (the credential narrows a connection, never widens one).
    fn bot_hello(&mut self, credential: &str, read_only: bool) -> Result<Access, RpcError> {
        if read_only {
            return Err(RpcError::invalid_params(
                "hello",
                "fields `credential` and `readOnly`: give one or the other",
            ));
        }
        if self.granted != Access::Control {
            return Err(RpcError::permission_denied(
                "a bot's credential is accepted only from a peer with control access (the daemon's own user)",
            ));
        }
        let Some(scope) = self.daemon.supervisor.bot_scope(credential) else {
            return Err(RpcError::permission_denied(
                "unknown bot credential: no active deployment holds it (a stopped or redeployed bot's credential no longer works)",
            ));
        };
        debug!(deployment = %scope.deployment_id, strategy = %scope.strategy, pid = ?self.peer.pid, "a bot said hello");
        self.caller.client = Some(format!("bot {}", scope.deployment_id).into());
        self.bot_credential = Some(credential.to_string());
        Ok(Access::Bot)
    }

    /// A request on a bot's connection: its deployment must still be active, and the
    /// request one its scope allows ([`crate::access::BotScope::admit`]).
    fn admit_bot(&self, request: &mut Request) -> Result<(), RpcError> {
        let scope = self
            .bot_credential
            .as_deref()
            .and_then(|c| self.daemon.supervisor.bot_scope(c))
            .ok_or_else(|| {
                RpcError::permission_denied(
                    "this bot's deployment is no longer active: its credential no longer works",
                )
            })?;
        scope.admit(request, |id| self.daemon.memory.decision_strategy(id))
    }

    /// Sends the snapshot, then starts forwarding the events that follow it.
    async fn subscribe(
        &mut self,
        id: Option<Id>,
        params: SubscribeParams,
        access: Access,
    ) -> Result<(), RpcError> {
        if self.subscribed {
            return Err(RpcError::invalid_request(
                "already subscribed on this connection; open another connection for other topics",
            ));
        }
        let mut topics = if params.topics.is_empty() {
            Topic::ALL.to_vec()
        } else {
            params.topics
        };
        topics.sort();
        topics.dedup();
        let (rx, last_seq) = self.daemon.bus.subscribe();
        let snapshot = crate::snapshot::take(&self.daemon, &topics, access).await;
        let result = SubscribeResult {
            topics: topics.clone(),
            snapshot,
            last_seq,
        };
        self.subscribed = true;
        // The response is queued before the first event: same outbox, in order.
        self.reply(
            id,
            Ok(serde_json::value::to_raw_value(&result).expect("subscribe result serializes")),
        )
        .await;
        self.daemon.subscribers.fetch_add(1, Ordering::Relaxed);
        let daemon = self.daemon.clone();
        let out = self.out.clone();
        let cancel = self.cancel.clone();
        let pid = self.peer.pid;
        tokio::spawn(async move {
            forward_events(rx, topics, last_seq, out, cancel, pid).await;
            daemon.subscribers.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(())
    }

    async fn reply(&self, id: Option<Id>, outcome: Result<Answer, RpcError>) {
        send_reply(&self.out, &self.cancel, id, outcome).await;
    }
}

/// A result serialized once: the answer's line embeds it as it is.
type Answer = Box<serde_json::value::RawValue>;

/// Serializes a response straight to JSON text (building a `Value` tree first, then
/// serializing and dropping it, was a tenth of memd's CPU under socket-load).
fn encode(answer: router::Answer) -> Result<Answer, RpcError> {
    serde_json::value::to_raw_value(&answer?)
        .map_err(|e| RpcError::internal(format!("cannot encode the result: {e}")))
}

/// Queues a response (none for a notification), giving up if the connection is closing.
async fn send_reply(
    out: &mpsc::Sender<Bytes>,
    cancel: &CancellationToken,
    id: Option<Id>,
    outcome: Result<Answer, RpcError>,
) {
    let Some(id) = id else { return };
    let line = Bytes::from(response_line(&id, outcome.as_deref()));
    tokio::select! {
        sent = tokio::time::timeout(REPLY_STALL_LIMIT, out.send(line)) => {
            if sent.is_err() {
                warn!(
                    "a client has not read its answers for {} s ({OUTBOX_FRAMES} queued); disconnecting it",
                    REPLY_STALL_LIMIT.as_secs()
                );
                cancel.cancel();
            }
        }
        _ = cancel.cancelled() => {}
    }
}

/// Forwards bus events of `topics` newer than `after` to the outbox. A subscriber that
/// cannot keep up (outbox full, or so far behind that the bus dropped events for it) is
/// disconnected: it could not have received every event in order.
async fn forward_events(
    mut rx: broadcast::Receiver<Arc<crate::bus::Published>>,
    topics: Vec<Topic>,
    after: u64,
    out: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
    pid: Option<i32>,
) {
    loop {
        let received = tokio::select! {
            biased;
            received = rx.recv() => received,
            _ = cancel.cancelled() => return,
        };
        match received {
            Ok(event) => {
                if event.seq <= after || !topics.contains(&event.topic) {
                    continue;
                }
                match out.try_send(event.line.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!(
                            ?pid,
                            "dropping a subscriber that stopped reading (its outbox of {OUTBOX_FRAMES} messages is full)"
                        );
                        cancel.cancel();
                        return;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(
                    ?pid,
                    missed, "dropping a subscriber that fell behind the event bus"
                );
                cancel.cancel();
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Writes queued lines, coalescing what is ready into one write.
async fn write_loop(mut writer: WriteHalf<Stream>, mut rx: mpsc::Receiver<Bytes>) {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(line) = rx.recv().await {
        buf.extend_from_slice(&line);
        while buf.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if writer.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = writer.shutdown().await;
}
