//! A TCP stream that, after sending, waits for the answer before reading.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper::rt::{Read, ReadBufCursor, Write};
use smol::Async;
use smol_hyper::rt::FuturesIo;

/// `async-io`'s TCP stream in hyper's I/O traits, which waits for
/// readability before the first read after a write.
///
/// Why: async-io tracks no readiness of its own, so a read tries the socket
/// first and only registers interest when that fails. The client reads
/// right after sending a request, before the answer can have come back, so
/// nearly every request paid for a read that failed with `EAGAIN` (on
/// `overhead`, 39,988 `recvfrom` calls for 20,000 requests against
/// tokio's 20,000: `perf stat -e syscalls:sys_enter_recvfrom rates fetch
/// --strategy smol --bases 20000 --concurrency 64 --endpoint ...` against
/// `rates serve --threads 1`). Waiting first registers the interest
/// straight away; reads after the first (a long body) try first as before.
#[derive(Debug)]
pub(crate) struct SmolIo {
    io: FuturesIo<Async<std::net::TcpStream>>,
    /// Bytes were written since the last read.
    sent: bool,
}

impl SmolIo {
    /// Connects to the first of `addrs` that accepts, with Nagle off.
    pub(crate) async fn connect(addrs: Vec<SocketAddr>, host: &str) -> io::Result<Self> {
        let mut last = None;
        for addr in addrs {
            match Async::<std::net::TcpStream>::connect(addr).await {
                Ok(stream) => {
                    stream.get_ref().set_nodelay(true)?;
                    return Ok(Self {
                        io: FuturesIo::new(stream),
                        sent: false,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} resolved to no address"),
            )
        }))
    }
}

impl Read for SmolIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.sent {
            ready!(this.io.get_ref().poll_readable(cx))?;
            this.sent = false;
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl Write for SmolIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.sent |= written > 0;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
