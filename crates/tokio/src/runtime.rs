//! Tokio as an [`AsyncRuntime`], and a lazily built runtime a strategy owns.

use std::future::Future;
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rates_core::{Error, ErrorKind};
use rates_http::AsyncRuntime;
use tokio::net::TcpStream;
use tokio::runtime::{Builder, Handle, Runtime};

/// Tokio's TCP, timer and spawn, for the shared client.
#[derive(Clone, Debug)]
pub(crate) struct TokioRuntime {
    pub(crate) handle: Handle,
}

impl AsyncRuntime for TokioRuntime {
    type Io = TokioIo<TcpStream>;

    fn name(&self) -> &'static str {
        "tokio"
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<Self::Io> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(TokioIo::new(stream))
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(self.handle.spawn(task));
    }
}

/// The current tokio runtime, checked to have the I/O and time drivers the
/// client needs.
///
/// # Errors
/// [`Runtime`](ErrorKind::Runtime) when there is no current runtime, or it
/// was built without I/O or timers; the message says what to do.
pub(crate) fn current(function: &str) -> Result<Handle, Error> {
    let handle = Handle::try_current().map_err(|_| {
        Error::new(
            ErrorKind::Runtime,
            format!(
                "{function} must be awaited inside a tokio runtime (it spawns tokio tasks): \
                 run it under #[tokio::main] or Runtime::block_on, or use the blocking \
                 strategy from synchronous code"
            ),
        )
    })?;
    // Tokio has no query for its drivers and panics on first use without
    // them; probe once here rather than fail every base.
    let time = std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO)));
    let io = std::panic::catch_unwind(|| {
        let socket = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
        socket.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(socket).map(drop)
    });
    if time.is_err() || io.is_err() {
        return Err(Error::new(
            ErrorKind::Runtime,
            format!(
                "{function} needs a tokio runtime with I/O and timers enabled: \
                 build it with enable_all() (as #[tokio::main] does)"
            ),
        ));
    }
    Ok(handle)
}

/// The error for blocking a thread that is already inside a tokio runtime.
pub(crate) fn nested(strategy: &str, instead: &str) -> Error {
    Error::new(
        ErrorKind::Runtime,
        format!(
            "the {strategy} strategy blocks the calling thread on a runtime of its own, \
             but this thread is inside a tokio runtime (blocking it would stall that \
             runtime, and tokio forbids it): `.await {instead}(&bases, &config)` instead, \
             or call the strategy from a thread outside the runtime"
        ),
    )
}

/// A runtime a strategy builds on first use and keeps for its lifetime.
#[derive(Debug)]
pub(crate) struct OwnedRuntime {
    runtime: OnceLock<Runtime>,
    build: fn() -> io::Result<Runtime>,
}

impl OwnedRuntime {
    pub(crate) fn new(build: fn() -> io::Result<Runtime>) -> Self {
        Self {
            runtime: OnceLock::new(),
            build,
        }
    }

    /// The runtime, built now if this is the first use.
    ///
    /// # Errors
    /// [`Runtime`](ErrorKind::Runtime) when it cannot be built (threads
    /// cannot be spawned, the OS refuses an epoll instance).
    pub(crate) fn get(&self) -> Result<&Runtime, Error> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let built = (self.build)().map_err(|e| match e.kind() {
            // A setting of the user's (see `multi_thread`): the message says which.
            io::ErrorKind::InvalidInput => Error::new(ErrorKind::InvalidInput, e.to_string()),
            _ => Error::new(
                ErrorKind::Runtime,
                format!(
                    "could not start a tokio runtime: {e} (check the thread and open-files limits)"
                ),
            ),
        })?;
        // Two threads may race to build it; the loser's runtime is dropped
        // here, outside any runtime, which tokio allows.
        let _ = self.runtime.set(built);
        self.runtime.get().ok_or_else(|| {
            Error::new(
                ErrorKind::Runtime,
                "the tokio runtime vanished after start-up",
            )
        })
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which tokio forbids
        // inside another runtime; shutting down in the background is allowed
        // anywhere, and no task of ours outlives a run.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Tokio's own setting for the number of worker threads of a
/// multi-threaded runtime, which its builder reads.
pub const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// A multi-threaded runtime with one worker per core, or as many as
/// [`WORKER_THREADS_ENV`] says (tokio's builder reads it; it panics on a
/// value that is not a whole number of at least 1, so that is checked here
/// first and is an `InvalidInput` error naming the setting).
pub(crate) fn multi_thread() -> io::Result<Runtime> {
    if let Some(value) = std::env::var_os(WORKER_THREADS_ENV) {
        let valid = value
            .to_str()
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > 0);
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{WORKER_THREADS_ENV}={} is not a number of worker threads: set it to a whole \
                     number of at least 1, or unset it for one worker per core",
                    value.to_string_lossy()
                ),
            ));
        }
    }
    Builder::new_multi_thread()
        .thread_name("rates-tokio")
        .enable_all()
        .build()
}

/// A runtime for gathering `spawn_blocking` calls: the caller's thread
/// drives the async part, the blocking pool does the work.
pub(crate) fn for_blocking() -> io::Result<Runtime> {
    Builder::new_current_thread()
        .max_blocking_threads(crate::BLOCKING_THREADS)
        .thread_name("rates-tokio-blocking")
        .enable_all()
        .build()
}
