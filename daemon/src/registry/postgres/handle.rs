//! A synchronous door to the pool: the registry is synchronous and is called from
//! runtime workers too (`get` in async code), where `Runtime::block_on` panics. So the
//! pool lives on a thread of its own with a current-thread runtime, and a caller sends
//! it a job and waits on a std channel, which works on any thread.

use super::{PgError, RowError, connect};
use futures::future::BoxFuture;
use sqlx::postgres::PgPool;
use std::future::Future;
use std::sync::mpsc as std_mpsc;
use tokio::sync::mpsc;

type Job = Box<dyn FnOnce(PgPool) -> BoxFuture<'static, ()> + Send>;

/// The pool's thread is gone: a job panicked (its answer was dropped) or memd is
/// stopping.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the registry's PostgreSQL thread is gone (a query panicked, or memd is stopping)")]
pub struct Gone;

/// The pool on its own thread (see the module's comment). Dropping it closes the pool
/// and joins the thread.
pub struct PgHandle {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PgHandle {
    /// Connects and migrates (as [`connect`]) on a new thread, and keeps the pool there.
    pub fn connect(url: &str, password: Option<&str>) -> Result<PgHandle, PgError> {
        let (url, password) = (url.to_string(), password.map(str::to_string));
        Self::start(move || async move { connect(&url, password.as_deref()).await })
    }

    /// Runs `make` on the new thread's runtime to get the pool (tests, other options).
    pub fn start<F, Fut>(make: F) -> Result<PgHandle, PgError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<PgPool, PgError>>,
    {
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("memd-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(PgError::Runtime(e.to_string())));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let pool = match make().await {
                        Ok(pool) => pool,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    // Each job is a task, so callers on several threads share the pool.
                    let mut tasks = tokio::task::JoinSet::new();
                    while let Some(job) = rx.recv().await {
                        tasks.spawn(job(pool.clone()));
                        while tasks.try_join_next().is_some() {}
                    }
                    while tasks.join_next().await.is_some() {}
                    pool.close().await;
                });
            })
            .map_err(|e| PgError::Runtime(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PgHandle {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(PgError::Runtime(
                    "the PostgreSQL thread stopped while connecting".into(),
                ))
            }
        }
    }

    /// Runs `job` with the pool on the pool's thread and waits for its answer. Callable
    /// from any thread, inside another runtime's async code too (it blocks that thread
    /// for the query's time, as a file read does). Not from within a job: that would wait
    /// on itself.
    pub fn call<T, F, Fut>(&self, job: F) -> Result<T, Gone>
    where
        F: FnOnce(PgPool) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let job: Job = Box::new(move |pool| {
            Box::pin(async move {
                let _ = tx.send(job(pool).await);
            })
        });
        self.jobs
            .as_ref()
            .ok_or(Gone)?
            .send(job)
            .map_err(|_| Gone)?;
        rx.recv().map_err(|_| Gone)
    }

    /// [`PgHandle::call`] for the row functions: one error type, the thread's loss
    /// included.
    pub fn rows<T, F, Fut>(&self, job: F) -> Result<T, RowError>
    where
        F: FnOnce(PgPool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RowError>> + Send + 'static,
        T: Send + 'static,
    {
        self.call(job)?
    }
}

impl Drop for PgHandle {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
