//! The async client and the worker driver against the real embedded
//! server, on a runtime made of smol's parts: connection reuse, error
//! classification (the same as the blocking client's), timeouts, and what
//! happens when a runtime misbehaves.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rates_async::fetch_all;
use rates_core::{Config, CurrencyCode, Error, ErrorKind, Report, Run, Strategy};
use rates_http::{AsyncClient, AsyncRuntime, BlockingClient};
use rates_server::{Fault, FaultRule, RatesServer, ServerConfig, When};
use smol::Executor;
use smol_hyper::rt::FuturesIo;

/// How the test runtime misbehaves, if at all.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Normal,
    /// `connect` panics.
    PanicOnConnect,
    /// `spawn` drops the task without running it (a runtime shutting down).
    DropTasks,
}

#[derive(Clone, Debug)]
struct TestRuntime {
    executor: Arc<Executor<'static>>,
    connects: Arc<AtomicUsize>,
    mode: Mode,
}

impl TestRuntime {
    fn new(mode: Mode) -> Self {
        Self {
            executor: Arc::new(Executor::new()),
            connects: Arc::new(AtomicUsize::new(0)),
            mode,
        }
    }

    fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }

    /// Runs `future` to completion, with this thread running the executor.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        smol::block_on(self.executor.run(future))
    }
}

/// The test runtime as a strategy, so runs go through the core's run
/// skeleton (validation, empty input, the report) as every strategy's do.
#[derive(Debug)]
struct OnTestRuntime(TestRuntime);

impl Strategy for OnTestRuntime {
    fn name(&self) -> &'static str {
        "test"
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (config, outcomes) = (run.config, run.outcomes);
        let runtime = &self.0;
        runtime.block_on(fetch_all(runtime.clone(), config, Arc::clone(outcomes)))?;
        Ok(None)
    }
}

/// Fetches `bases` with the shared async client on `runtime`.
fn run(runtime: &TestRuntime, bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
    OnTestRuntime(runtime.clone()).fetch(bases, config)
}

impl AsyncRuntime for TestRuntime {
    type Io = FuturesIo<smol::net::TcpStream>;

    fn name(&self) -> &'static str {
        "test"
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<Self::Io> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        assert!(self.mode != Mode::PanicOnConnect, "connect exploded");
        Ok(FuturesIo::new(
            smol::net::TcpStream::connect((host, port)).await?,
        ))
    }

    async fn sleep(&self, duration: Duration) {
        smol::Timer::after(duration).await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if self.mode == Mode::DropTasks {
            drop(task);
        } else {
            self.executor.spawn(task).detach();
        }
    }
}

fn server(config: ServerConfig) -> RatesServer {
    RatesServer::start(config).unwrap()
}

fn config_for(server: &RatesServer) -> Config {
    let mut config = Config::new(&server.endpoint()).unwrap();
    config.retry.initial_backoff = Duration::from_millis(5);
    config
}

#[test]
fn each_worker_keeps_one_connection() {
    let server = server(ServerConfig::default().with_latency(Duration::from_millis(1)));
    let config = config_for(&server).with_concurrency(4);
    let runtime = TestRuntime::new(Mode::Normal);
    let bases = rates_core::generated_codes(40);
    let report = run(&runtime, &bases, &config).unwrap();
    assert!(report.all_succeeded(), "{:?}", report.failures().next());
    assert_eq!(report.strategy, "test");
    let got: Vec<_> = report.outcomes.iter().map(|o| o.base).collect();
    assert_eq!(got, bases);
    assert_eq!(server.stats().requests, 40);
    assert_eq!(
        runtime.connects(),
        4,
        "one keep-alive connection per worker"
    );
}

#[test]
fn a_dropped_connection_is_replaced() {
    let server = server(
        ServerConfig::default().with_fault(FaultRule::new(Fault::Drop, When::FirstPerBase(1))),
    );
    let config = config_for(&server).with_concurrency(1);
    let runtime = TestRuntime::new(Mode::Normal);
    let bases = rates_core::generated_codes(5);
    let report = run(&runtime, &bases, &config).unwrap();
    assert!(report.all_succeeded());
    assert!(report.outcomes.iter().all(|o| o.attempts == 2));
    // The first connection, then one more after each dropped request; the
    // connection a retry succeeded on carries the next base.
    assert_eq!(runtime.connects(), 6);
}

/// The kind (and for statuses, the status and `Retry-After`) each client
/// gets for one GET.
fn both_clients(config: &Config) -> [Result<(u16, Option<Duration>), ErrorKind>; 2] {
    let usd: CurrencyCode = "USD".parse().unwrap();
    let path = config.endpoint.path_and_query(usd, &config.symbols);
    let url = config.endpoint.url(usd, &config.symbols);
    let blocking = BlockingClient::new(config, 1)
        .get(&url)
        .map(|r| (r.status, r.retry_after))
        .map_err(|e| e.kind());
    let runtime = TestRuntime::new(Mode::Normal);
    let mut client = AsyncClient::new(runtime.clone(), config);
    let asynchronous = runtime
        .block_on(client.get(&path))
        .map(|r| (r.status, r.retry_after))
        .map_err(|e| e.kind());
    [blocking, asynchronous]
}

#[test]
fn errors_are_classified_like_the_blocking_client() {
    let cases = [
        (Fault::Drop, Err(ErrorKind::Connection)),
        (Fault::Truncated, Err(ErrorKind::Connection)),
        (Fault::ServerError, Ok((500, None))),
        (
            Fault::TooManyRequests {
                retry_after_secs: 2,
            },
            Ok((429, Some(Duration::from_secs(2)))),
        ),
    ];
    for (fault, want) in cases {
        let server =
            server(ServerConfig::default().with_fault(FaultRule::new(fault, When::Always)));
        let config = config_for(&server);
        let [blocking, asynchronous] = both_clients(&config);
        assert_eq!(blocking, want, "blocking client, {fault:?}");
        assert_eq!(asynchronous, want, "async client, {fault:?}");
    }
}

#[test]
fn body_cap_and_nothing_listening_match_the_blocking_client() {
    let server = server(ServerConfig::default());
    let mut config = config_for(&server);
    config.max_body_bytes = 40;
    let runtime = TestRuntime::new(Mode::Normal);
    let mut client = AsyncClient::new(runtime.clone(), &config);
    let err = runtime.block_on(client.get("/rates?base=USD")).unwrap_err();
    assert!(err.is_body_too_large(), "{err}");
    assert!(err.to_string().contains("40-byte cap"), "{err}");
    assert!(!client.is_connected(), "a half-read connection is not kept");
    assert_eq!(
        both_clients(&config),
        [Err(ErrorKind::BodyTooLarge), Err(ErrorKind::BodyTooLarge)]
    );

    let config = config_for(&server);
    drop(server);
    assert_eq!(
        both_clients(&config),
        [Err(ErrorKind::Connection), Err(ErrorKind::Connection)]
    );
}

#[test]
fn a_stalled_server_times_out_on_the_runtime_timer() {
    let server =
        server(ServerConfig::default().with_fault(FaultRule::new(Fault::Stall, When::Always)));
    let timeout = Duration::from_millis(200);
    let config = config_for(&server).with_request_timeout(timeout);
    let runtime = TestRuntime::new(Mode::Normal);
    let mut client = AsyncClient::new(runtime.clone(), &config);
    let started = Instant::now();
    let err = runtime.block_on(client.get("/rates?base=USD")).unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("request timeout"), "{err}");
    assert!(elapsed >= timeout, "timed out early, after {elapsed:?}");
    assert!(elapsed < timeout * 10, "took {elapsed:?}");
    assert!(!client.is_connected(), "a timed-out connection is not kept");
}

#[test]
fn each_request_gets_its_whole_timeout_from_the_client_s_one_timer() {
    // USD is answered, EUR stalls: the timer armed for the first request
    // must not cut the later ones short, and must still end each of them.
    let eur: CurrencyCode = "EUR".parse().unwrap();
    let server =
        server(ServerConfig::default().with_fault(FaultRule::new(Fault::Stall, When::Base(eur))));
    let timeout = Duration::from_millis(300);
    let config = config_for(&server).with_request_timeout(timeout);
    let runtime = TestRuntime::new(Mode::Normal);
    let mut client = AsyncClient::new(runtime.clone(), &config);
    runtime.block_on(async {
        client.get("/rates?base=USD").await.unwrap();
        // Two thirds of the first request's timeout pass before the next.
        smol::Timer::after(Duration::from_millis(200)).await;
        for _ in 0..2 {
            let started = Instant::now();
            let err = client.get("/rates?base=EUR").await.unwrap_err();
            let elapsed = started.elapsed();
            assert!(err.is_timeout(), "{err}");
            assert!(elapsed >= timeout, "timed out early, after {elapsed:?}");
            assert!(elapsed < timeout * 10, "took {elapsed:?}");
        }
        // And a request after timeouts still gets its answer.
        client.get("/rates?base=USD").await.unwrap();
    });
    assert_eq!(server.stats().requests, 4);
}

#[test]
fn a_panicking_runtime_fails_each_base_not_the_run() {
    let server = server(ServerConfig::default());
    let config = config_for(&server).with_concurrency(2);
    let runtime = TestRuntime::new(Mode::PanicOnConnect);
    let bases = rates_core::generated_codes(5);
    let report = run(&runtime, &bases, &config).unwrap();
    assert_eq!(report.outcomes.len(), 5);
    for (o, base) in report.outcomes.iter().zip(&bases) {
        assert_eq!(o.base, *base);
        let err = o.result.as_ref().unwrap_err();
        assert!(err.is_panic(), "{o}");
        assert!(err.to_string().contains("connect exploded"), "{err}");
        assert_eq!(o.attempts, 1, "{o}");
    }
    assert_eq!(runtime.connects(), 5);
    assert_eq!(server.stats().requests, 0);
}

#[test]
fn workers_that_never_run_lose_nothing_and_hang_nothing() {
    let server = server(ServerConfig::default());
    let config = config_for(&server).with_concurrency(3);
    let runtime = TestRuntime::new(Mode::DropTasks);
    let bases = rates_core::generated_codes(7);
    let report = run(&runtime, &bases, &config).unwrap();
    assert_eq!(report.outcomes.len(), 7);
    for (o, base) in report.outcomes.iter().zip(&bases) {
        assert_eq!(o.base, *base);
        assert!(o.result.as_ref().unwrap_err().is_worker_crash(), "{o}");
    }
}

#[test]
fn empty_input_and_invalid_config() {
    let runtime = TestRuntime::new(Mode::Normal);
    let config = Config::new("http://127.0.0.1:1/?b={base}").unwrap();
    let report = run(&runtime, &[], &config).unwrap();
    assert!(report.outcomes.is_empty());
    assert_eq!(runtime.connects(), 0);
    let err = run(
        &runtime,
        &rates_core::generated_codes(1),
        &config.with_concurrency(0),
    )
    .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
}

#[test]
fn a_path_that_cannot_be_sent_is_refused_before_anything_runs() {
    // A space cannot go in a request line: the endpoint is refused up
    // front, naming it, so no run starts and nothing connects.
    let err = Config::new("http://127.0.0.1:1/rates?base={base}&note=a b").unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains("note=a b"), "{err}");
}

fn tls_config_for(server: &RatesServer) -> Config {
    let mut config = config_for(server);
    config.ca_cert_pem = server.certificate_pem().map(str::to_owned);
    config
}

#[test]
fn tls_connections_are_kept_alive_too() {
    let server = server(ServerConfig::default().with_generated_tls());
    let config = tls_config_for(&server).with_concurrency(4);
    assert!(config.endpoint.is_https());
    let runtime = TestRuntime::new(Mode::Normal);
    let bases = rates_core::generated_codes(40);
    let report = run(&runtime, &bases, &config).unwrap();
    assert!(report.all_succeeded(), "{:?}", report.failures().next());
    assert_eq!(runtime.connects(), 4, "one TLS connection per worker");
    let stats = server.stats();
    assert_eq!((stats.requests, stats.connections), (40, 4));
}

#[test]
fn tls_errors_are_classified_like_the_blocking_client() {
    let tls = server(ServerConfig::default().with_generated_tls());
    assert_eq!(
        both_clients(&tls_config_for(&tls)),
        [Ok((200, None)), Ok((200, None))],
        "the server's certificate trusted"
    );
    assert_eq!(
        both_clients(&config_for(&tls)),
        [Err(ErrorKind::Tls), Err(ErrorKind::Tls)],
        "public roots only"
    );
    // https:// to a plain HTTP server: no TLS answer at all.
    let plain = server(ServerConfig::default());
    let mut config = config_for(&plain);
    config.endpoint = plain
        .endpoint()
        .replacen("http://", "https://", 1)
        .parse()
        .unwrap();
    assert_eq!(
        both_clients(&config),
        [Err(ErrorKind::Tls), Err(ErrorKind::Tls)]
    );
    assert_eq!(tls.stats().requests, 2);
    assert_eq!(plain.stats().requests, 0);
}

#[test]
fn a_silent_peer_times_the_handshake_out() {
    // The kernel completes the TCP connection; nobody ever answers the
    // ClientHello.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = Config::new(&format!("https://127.0.0.1:{port}/rates?base={{base}}")).unwrap();
    config.connect_timeout = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(500);
    assert_eq!(
        both_clients(&config),
        [Err(ErrorKind::Timeout), Err(ErrorKind::Timeout)]
    );
    drop(listener);
}

#[test]
fn an_unreadable_ca_certificate_is_invalid_input() {
    let mut config = Config::new("https://127.0.0.1:1/rates?base={base}").unwrap();
    config.ca_cert_pem =
        Some("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".to_owned());
    let runtime = TestRuntime::new(Mode::Normal);
    let err = run(&runtime, &rates_core::generated_codes(1), &config).unwrap_err();
    assert!(
        err.is_invalid_input() && err.to_string().contains("ca_cert_pem"),
        "{err}"
    );
    assert_eq!(runtime.connects(), 0);
    assert_eq!(
        both_clients(&config),
        [Err(ErrorKind::InvalidInput), Err(ErrorKind::InvalidInput)]
    );
}

/// A one-connection server on loopback that answers every request on it
/// with `response` (read until the request's blank line), until the client
/// closes it.
fn canned(response: Vec<u8>) -> Config {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => {
                    if writer.write_all(&response).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
            }
        }
    });
    Config::new(&format!("http://127.0.0.1:{port}/rates?base={{base}}")).unwrap()
}

fn with_length(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\n{headers}content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn bodies_far_larger_than_the_read_buffer_arrive_whole_up_to_the_cap() {
    let runtime = TestRuntime::new(Mode::Normal);
    // 300 KiB of body, streamed through the small per-connection buffer.
    let body: Vec<u8> = (0..300 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let config = canned(with_length("", &body));
    let mut client = AsyncClient::new(runtime.clone(), &config);
    let raw = runtime.block_on(client.get("/rates?base=USD")).unwrap();
    assert_eq!(raw.status, 200);
    assert!(raw.body == body, "{} bytes back", raw.body.len());
    assert!(client.is_connected(), "read to its end: kept alive");

    // Chunked, so not announced: the 1 MiB default cap stops it as it streams.
    let chunk = vec![b'x'; 64 * 1024];
    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..17 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let config = canned(chunked);
    assert_eq!(config.max_body_bytes, 1 << 20);
    let mut client = AsyncClient::new(runtime.clone(), &config);
    let err = runtime.block_on(client.get("/rates?base=USD")).unwrap_err();
    assert!(err.is_body_too_large(), "{err}");
    assert!(err.to_string().contains("1048576-byte cap"), "{err}");
}

#[test]
fn long_response_heads_grow_the_buffer_up_to_a_limit_and_the_error_says_so() {
    let runtime = TestRuntime::new(Mode::Normal);
    // 1.5 KiB and 16 KiB of headers: more than the real APIs send, and more
    // than the 1 KiB a connection starts with; they fit.
    for padding in [1_500, 16 * 1024] {
        let config = canned(with_length(
            &format!("x-padding: {}\r\n", "p".repeat(padding)),
            b"{}",
        ));
        let mut client = AsyncClient::new(runtime.clone(), &config);
        let raw = runtime.block_on(client.get("/rates?base=USD")).unwrap();
        assert_eq!((raw.status, raw.body.as_slice()), (200, b"{}".as_slice()));
        assert!(client.is_connected(), "{padding}: kept alive");
    }

    let config = canned(with_length(
        &format!("x-padding: {}\r\n", "p".repeat(70 * 1024)),
        b"{}",
    ));
    let mut client = AsyncClient::new(runtime.clone(), &config);
    let err = runtime.block_on(client.get("/rates?base=USD")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(
        err.to_string()
            .contains("a response head or chunk line longer than 65536 bytes"),
        "{err}"
    );
    assert!(!client.is_connected());
}

/// A server that answers one request per connection and then closes it,
/// without saying so in the response; it counts the connections.
fn one_answer_per_connection(response: Vec<u8>) -> (Config, Arc<AtomicUsize>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = writer.write_all(&response);
        }
    });
    let config = Config::new(&format!("http://127.0.0.1:{port}/rates?base={{base}}")).unwrap();
    (config, accepted)
}

#[test]
fn a_connection_the_server_closed_while_idle_is_replaced_without_an_attempt() {
    let runtime = TestRuntime::new(Mode::Normal);
    let (config, accepted) = one_answer_per_connection(with_length("", b"{}"));
    let mut client = AsyncClient::new(runtime.clone(), &config);
    for round in 1..=3 {
        let raw = runtime.block_on(client.get("/rates?base=USD")).unwrap();
        assert_eq!(raw.status, 200, "round {round}");
        // Kept: the response said nothing of closing.
        assert!(client.is_connected(), "round {round}");
        // Let the server's close arrive before the next request.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn the_blocking_client_also_replaces_a_connection_closed_while_idle() {
    let (config, accepted) = one_answer_per_connection(with_length("", b"{}"));
    let client = BlockingClient::new(&config, 1);
    let url = config.endpoint.url("USD".parse().unwrap(), &[]);
    for round in 1..=3 {
        let raw = client.get(&url).unwrap();
        assert_eq!(raw.status, 200, "round {round}");
        // Let the server's close arrive before the next request.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn connection_close_and_http_1_0_are_not_reused() {
    let runtime = TestRuntime::new(Mode::Normal);
    for response in [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
        // No length: the body runs to the close.
        b"HTTP/1.1 200 OK\r\n\r\n{}".to_vec(),
    ] {
        let (config, accepted) = one_answer_per_connection(response.clone());
        let mut client = AsyncClient::new(runtime.clone(), &config);
        for _ in 0..2 {
            let raw = runtime.block_on(client.get("/rates?base=USD")).unwrap();
            assert_eq!(raw.body, b"{}", "{}", String::from_utf8_lossy(&response));
            assert!(!client.is_connected());
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}

/// A response of `n` bytes of body, framed one way.
type Framed = fn(usize) -> Vec<u8>;

/// `size` bytes of body in chunks of at most 1000 bytes.
fn chunked(size: usize) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let body = vec![b'x'; size];
    for chunk in body.chunks(1000) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The body cap is a cap, not a limit one byte short of it: a body of
/// exactly `max_body_bytes` arrives whole, one byte more fails as too
/// large, announced (Content-Length) or not (chunked), through both
/// clients alike.
#[test]
fn a_body_exactly_at_the_cap_arrives_and_one_byte_more_is_refused_by_both_clients() {
    const CAP: usize = 5_000;
    let runtime = TestRuntime::new(Mode::Normal);
    let cases: [(&str, Framed); 2] = [
        ("content-length", |n| with_length("", &vec![b'x'; n])),
        ("chunked", chunked),
    ];
    for (framing, response) in cases {
        for (size, fits) in [(CAP, true), (CAP + 1, false)] {
            let answer =
                |result: Result<rates_core::RawResponse, Error>, client: &str| match (result, fits)
                {
                    (Ok(raw), true) => assert_eq!(raw.body.len(), CAP, "{client} {framing}"),
                    (Err(e), false) => {
                        assert!(e.is_body_too_large(), "{client} {framing} {size}: {e}");
                        assert!(e.to_string().contains("5000-byte cap"), "{e}");
                    }
                    (other, _) => panic!(
                        "{client} {framing}: {size} bytes against a cap of {CAP}: {:?}",
                        other.map(|r| r.body.len())
                    ),
                };
            let mut config = canned(response(size));
            config.max_body_bytes = CAP;
            let mut client = AsyncClient::new(runtime.clone(), &config);
            answer(runtime.block_on(client.get("/rates?base=USD")), "async");
            let mut config = canned(response(size));
            config.max_body_bytes = CAP;
            let url = config.endpoint.url("USD".parse().unwrap(), &[]);
            answer(BlockingClient::new(&config, 1).get(&url), "blocking");
        }
    }
}
