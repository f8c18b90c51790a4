//! `rates serve` holds 10,000 concurrent connections. The server runs in its
//! own process so each side has its own open-files budget.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

const CONNECTIONS: usize = 10_000;

fn raise_own_open_files_limit(wanted: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        assert!(
            lim.rlim_max >= wanted,
            "this test needs {wanted} open files; the hard limit is {} (raise it with ulimit -Hn)",
            lim.rlim_max
        );
        lim.rlim_cur = lim.rlim_cur.max(wanted);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

#[test]
fn serve_holds_ten_thousand_connections() {
    raise_own_open_files_limit(CONNECTIONS as u64 + 256);
    let mut server = Command::new(env!("CARGO_BIN_EXE_rates"))
        .args([
            "serve",
            "--port",
            "0",
            "--duration",
            "120s",
            "--stats-every",
            "600s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rates serve");
    let mut stdout = BufReader::new(server.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout
        .read_line(&mut first)
        .expect("rates serve printed its address");
    // Keep draining what the server prints, as a terminal would.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let addr: SocketAddr = first
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));

    let streams: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|i| {
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s
        })
        .collect();
    // Every connection is open at once; now each asks and is answered.
    for (i, mut s) in streams.iter().enumerate() {
        write!(
            s,
            "GET /rates?base=USD&symbols=EUR HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap_or_else(|e| panic!("request {i}: {e}"));
    }
    let mut ok = 0;
    for (i, mut s) in streams.iter().enumerate() {
        let mut head = [0u8; 12];
        s.read_exact(&mut head)
            .unwrap_or_else(|e| panic!("answer {i}: {e}"));
        if &head == b"HTTP/1.1 200" {
            ok += 1;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(ok, CONNECTIONS);
}
