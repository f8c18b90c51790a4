//! Workers that die, hang or misbehave: the run completes, the base is
//! retried or reported as a worker crash, and nothing waits forever.
//!
//! Misbehaving workers are small `/bin/sh` scripts speaking just enough of
//! the protocol; well-behaved ones are this test program itself, re-run as
//! a worker (its `main` calls `worker_if_asked` first, so the file runs
//! without libtest's harness).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};
use rates_core::{Config, CurrencyCode, ErrorKind, Strategy};
use rates_process::{ProcessPool, Processes, WorkerCommand};
use rates_server::{Fault, FaultRule, RatesServer, ServerConfig, When};

const READY: &str = r#"echo '{"ready":{"protocol":3}}'"#;

fn worker() -> WorkerCommand {
    WorkerCommand::current_exe().unwrap()
}

fn script(body: &str, args: &[&str]) -> WorkerCommand {
    let mut all = vec!["-c".to_owned(), body.to_owned(), "sh".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    WorkerCommand {
        program: "/bin/sh".into(),
        args: all,
    }
}

fn config(server: &RatesServer) -> Config {
    let mut config = Config::new(&server.endpoint()).unwrap();
    config.retry.initial_backoff = Duration::from_millis(10);
    config
}

fn codes(n: usize) -> Vec<CurrencyCode> {
    rates_core::parse_codes("USD,EUR,PLN,NOK,CZK,GBP,CHF,SEK,JPY,DKK").unwrap()[..n].to_vec()
}

/// The parent pid of `pid`, if it still exists.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `bases` on `pool` and, once the server has seen `after` requests
/// (waiting 20 s at most), kills worker `victim` with SIGKILL.
fn run_and_kill(
    pool: &ProcessPool,
    bases: &[CurrencyCode],
    server: &RatesServer,
    after: u64,
    victim: u32,
) -> rates_core::Report {
    std::thread::scope(|s| {
        let run = s.spawn(|| pool.run(bases));
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.stats().requests < after {
            assert!(Instant::now() < deadline, "the run never got going");
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: kill(2) with a pid the test's pool started and has not
        // reaped (it is busy with the run); if it had exited, the kill
        // fails and the assert says so.
        let killed = unsafe { libc::kill(i32::try_from(victim).unwrap(), libc::SIGKILL) };
        assert_eq!(
            killed,
            0,
            "kill failed: {}",
            std::io::Error::last_os_error()
        );
        run.join().unwrap()
    })
}

/// A server that answers after 300 ms, a pool of two workers on it, and
/// eight bases.
fn two_workers_and_a_slow_server() -> (RatesServer, ProcessPool, Vec<CurrencyCode>) {
    let server =
        RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(300)))
            .unwrap();
    let config = config(&server).with_concurrency(2);
    let pool = ProcessPool::start(worker(), &config, 2).unwrap();
    (server, pool, codes(8))
}

fn a_worker_killed_mid_run_loses_nothing() {
    let (server, pool, bases) = two_workers_and_a_slow_server();
    let before = pool.pids();
    assert_eq!(before.len(), 2);
    let victim = before[0];

    // Both workers hold a base once the server has seen two requests (it
    // answers each only after 300 ms).
    let report = run_and_kill(&pool, &bases, &server, 2, victim);

    assert_eq!(report.outcomes.len(), bases.len());
    for (o, base) in report.outcomes.iter().zip(&bases) {
        assert_eq!(o.base, *base);
        assert!(o.result.is_ok(), "{o}");
    }
    let retried: Vec<_> = report.outcomes.iter().filter(|o| o.attempts >= 2).collect();
    assert_eq!(
        retried.len(),
        1,
        "one base was on the killed worker: {retried:?}"
    );
    assert_eq!(report.total_attempts(), bases.len() as u64 + 1);

    let after = pool.pids();
    assert_eq!(after.len(), 2, "the killed worker was replaced");
    assert!(!after.contains(&victim));
    assert_ne!(
        parent_of(victim),
        Some(std::process::id()),
        "the killed worker was not reaped"
    );
    assert!(pool.shutdown().is_some_and(|peak| peak > 0));
}

/// The fork server killed, then a worker: the replacement is started by
/// running the program, and nothing is lost.
fn a_dead_fork_server_only_means_workers_are_run_as_programs() {
    let (server, pool, bases) = two_workers_and_a_slow_server();
    let fork_server = pool.fork_server_pid().expect("a fork server");
    // SAFETY: kill(2) with the pid of the pool's fork server, a child of
    // this process that only the pool reaps (when it fails or is dropped).
    assert_eq!(
        unsafe { libc::kill(i32::try_from(fork_server).unwrap(), libc::SIGKILL) },
        0
    );
    let victim = pool.pids()[0];
    let report = run_and_kill(&pool, &bases, &server, 2, victim);
    for (o, base) in report.outcomes.iter().zip(&bases) {
        assert_eq!(o.base, *base);
        assert!(o.result.is_ok(), "{o}");
    }
    assert_eq!(report.total_attempts(), bases.len() as u64 + 1);
    let after = pool.pids();
    assert_eq!(after.len(), 2, "the killed worker was replaced");
    assert!(!after.contains(&victim));
    for pid in &after {
        assert_eq!(parent_of(*pid), Some(std::process::id()));
    }
    // The failed fork stopped and reaped the server.
    assert_eq!(pool.fork_server_pid(), None);
    assert_ne!(parent_of(fork_server), Some(std::process::id()));
    assert!(pool.shutdown().is_some());
}

/// At zero latency workers get their requests in batches, two batches at a
/// time: a worker killed then fails every request it had not answered, and
/// each is retried once on its replacement; none is lost or sent twice.
fn a_worker_killed_mid_batch_loses_nothing() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let config = config(&server).with_concurrency(2);
    let bases = rates_core::generated_codes(3000);
    let pool = ProcessPool::start(worker(), &config, 2).unwrap();
    let victim = pool.pids()[0];
    let report = run_and_kill(&pool, &bases, &server, 500, victim);
    assert_eq!(report.outcomes.len(), bases.len());
    for (o, base) in report.outcomes.iter().zip(&bases) {
        assert_eq!(o.base, *base);
        assert!(o.result.is_ok(), "{o}");
    }
    let retried = report.outcomes.iter().filter(|o| o.attempts > 1).count();
    assert!(
        (1..=16).contains(&retried),
        "the killed worker held at most two batches of 8, and at least the request it was on: \
         {retried} retried"
    );
    assert_eq!(report.total_attempts(), (bases.len() + retried) as u64);
    assert!(
        !pool.pids().contains(&victim),
        "the killed worker was replaced"
    );
    assert!(pool.shutdown().is_some());
}

/// A batch's replies come out together after its last request, so stalls
/// inside one batch add up before the first reply: six 500 ms request
/// timeouts in a row take longer than one request may (connect and request
/// timeouts plus a margin, 2.7 s here), which must not read as a dead
/// worker. With one worker the batches are fixed: the first base alone,
/// then the next eight together.
fn stalls_in_one_batch_are_timeouts_not_a_dead_worker() {
    let bases = rates_core::generated_codes(20);
    let mut server = ServerConfig::default();
    for base in &bases[1..=6] {
        server = server.with_fault(FaultRule::new(Fault::Stall, When::Base(*base)));
    }
    let server = RatesServer::start(server).unwrap();
    let mut config = config(&server)
        .with_concurrency(1)
        .with_retries(0)
        .with_request_timeout(Duration::from_millis(500));
    config.connect_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let report = Processes::new(worker()).fetch(&bases, &config).unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "bounded");
    for (n, o) in report.outcomes.iter().enumerate() {
        if (1..=6).contains(&n) {
            let err = o.result.as_ref().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{o}");
        } else {
            assert!(o.result.is_ok(), "{o}");
        }
        assert_eq!(o.attempts, 1, "{o}");
    }
}

fn garbage_from_a_worker_is_a_worker_crash() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let garbage = script(
        &format!("read hello; {READY}; while read req; do echo 'this is not json'; done"),
        &[],
    );
    let config = config(&server).with_retries(2).with_concurrency(1);
    let report = Processes::new(garbage).fetch(&codes(2), &config).unwrap();
    for o in &report.outcomes {
        let err = o.result.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WorkerCrash, "{o}");
        assert!(err.to_string().contains("unreadable reply"), "{err}");
        assert_eq!(o.attempts, 3, "{o}");
    }
    assert_eq!(server.stats().requests, 0);
}

/// A script worker that answers each request (ids 1, 2, ...) with a 200
/// whose line says `len` bytes of body follow, then writes `body` in two
/// parts with a pause between, and then does `after` (say, `exit 3`).
fn body_writer(len: usize, body: &str, after: &str) -> WorkerCommand {
    let (first, second) = body.split_at(body.len() / 2);
    let line = format!(
        r#"{{"response":{{"id":%d,"result":{{"Ok":{{"status":200,"body_len":{len}}}}}}}}}\n"#
    );
    script(
        &format!(
            "read hello; {READY}; id=0; while read req; do id=$((id + 1)); \
             printf '{line}' \"$id\"; printf '%s' '{first}'; sleep 0.2; printf '%s' '{second}'; \
             {after}; done"
        ),
        &[],
    )
}

const USD_BODY: &str = r#"{"base":"USD","date":"2019-04-09","rates":{"EUR":0.886761}}"#;

fn a_body_that_arrives_in_parts_is_read_whole() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let worker = body_writer(USD_BODY.len(), USD_BODY, "true");
    let config = config(&server).with_concurrency(1);
    let bases = rates_core::parse_codes("USD").unwrap();
    let report = Processes::new(worker).fetch(&bases, &config).unwrap();
    let o = &report.outcomes[0];
    let rates = o.result.as_ref().unwrap();
    assert_eq!(rates.base.as_str(), "USD", "{o}");
    let eur: CurrencyCode = "EUR".parse().unwrap();
    assert!((rates.rates[&eur] - 0.886761).abs() < 1e-9, "{o}");
    assert_eq!(o.attempts, 1, "{o}");
}

fn a_body_cut_short_is_a_worker_crash() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    // It promises ten bytes more than it writes, then exits.
    let worker = body_writer(USD_BODY.len() + 10, USD_BODY, "exit 3");
    let config = config(&server).with_retries(1).with_concurrency(1);
    let bases = rates_core::parse_codes("USD").unwrap();
    let report = Processes::new(worker).fetch(&bases, &config).unwrap();
    let o = &report.outcomes[0];
    let err = o.result.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerCrash, "{o}");
    assert!(
        err.to_string().contains("-byte body before closing"),
        "{err}"
    );
    assert_eq!(o.attempts, 2, "{o}");
}

fn a_worker_that_exits_mid_request_is_replaced_and_the_base_retried() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let mark = std::env::temp_dir().join(format!("rates-process-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir(&mark);
    // The first worker dies on its first request; every later one is real.
    let body = format!(
        "if mkdir \"$1\" 2>/dev/null; then read hello; {READY}; read req; exit 3; \
         else exec \"$2\"; fi"
    );
    let worker = worker();
    let program = worker.program.to_str().unwrap();
    let flaky = script(&body, &[mark.to_str().unwrap(), program]);
    let config = config(&server).with_concurrency(1);
    let report = Processes::new(flaky).fetch(&codes(3), &config).unwrap();
    let _ = std::fs::remove_dir(&mark);
    assert!(
        report.all_succeeded(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    let attempts: Vec<u32> = report.outcomes.iter().map(|o| o.attempts).collect();
    assert_eq!(attempts, [2, 1, 1]);
    assert_eq!(server.stats().requests, 3);
}

/// So many symbols that the hello (and a URL with `{symbols}`) is larger
/// than a pipe buffer: writing it blocks until the worker reads.
fn huge_symbols() -> Vec<CurrencyCode> {
    let some = rates_core::parse_codes("USD,EUR,PLN,NOK,CZK").unwrap();
    some.iter().copied().cycle().take(30_000).collect()
}

fn never_ready(huge: bool, expected: &str) {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let mut config = config(&server);
    if huge {
        config.symbols = huge_symbols();
    }
    config.connect_timeout = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = Processes::new(script("exec sleep 30", &[]))
        .fetch(&codes(2), &config)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Spawn);
    assert!(err.to_string().contains(expected), "{err}");
    assert!(err.to_string().contains("/bin/sh"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().requests, 0);
}

fn a_worker_that_never_gets_ready_fails_the_start_in_bounded_time() {
    never_ready(false, "did not say it was ready");
}

fn a_worker_that_never_reads_its_settings_fails_the_start_in_bounded_time() {
    // The settings are larger than a pipe buffer: even sending them must
    // give up.
    never_ready(true, "could not be sent its settings");
}

fn a_worker_that_stops_reading_is_a_crash_not_a_hang() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    // It reads its settings, says it is ready, then never reads again.
    let deaf = script(
        &format!("head -n 1 >/dev/null; {READY}; exec sleep 30"),
        &[],
    );
    let mut config = config(&server).with_retries(0).with_concurrency(1);
    config.endpoint = format!(
        "http://{}/rates?base={{base}}&symbols={{symbols}}",
        server.addr()
    )
    .parse()
    .unwrap();
    config.symbols = huge_symbols();
    config.connect_timeout = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let report = Processes::new(deaf).fetch(&codes(1), &config).unwrap();
    let err = report.outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerCrash, "{err}");
    assert!(err.to_string().contains("did not read"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().requests, 0);
}

fn a_missing_worker_program_is_a_clear_error() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let missing = PathBuf::from("/nonexistent/rates-worker");
    let config = config(&server);
    let started = Instant::now();
    let err = Processes::new(WorkerCommand::new(&missing, [""; 0]))
        .fetch(&codes(3), &config)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Spawn);
    let message = err.to_string();
    for needle in ["/nonexistent/rates-worker", "worker command"] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.stats().requests, 0);
}

fn a_worker_of_another_protocol_is_refused_by_name() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let old = script(
        r#"read hello; echo '{"ready":{"protocol":0}}'; read rest"#,
        &[],
    );
    let err = Processes::new(old)
        .fetch(&codes(1), &config(&server))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Spawn);
    assert!(err.to_string().contains("protocol 0"), "{err}");
}

fn the_default_worker_is_this_program_and_its_pool_reports_its_costs() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let config = config(&server).with_concurrency(3);
    let report = Processes::default().fetch(&codes(3), &config).unwrap();
    assert!(
        report.all_succeeded(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(
        Processes::default().worker().unwrap().program,
        std::env::current_exe().unwrap()
    );
    let pool = ProcessPool::start(worker(), &config, 2).unwrap();
    assert!(pool.startup() > Duration::ZERO);
    assert!(pool.run(&codes(3)).all_succeeded());
    assert!(pool.shutdown().is_some_and(|peak| peak > 0));
}

/// One trial per test function, named after it.
macro_rules! trials {
    ($($test:ident),* $(,)?) => {
        vec![$(Trial::test(stringify!($test), || {
            $test();
            Ok(())
        })),*]
    };
}

fn main() -> std::process::ExitCode {
    if let Some(code) = rates_process::worker_if_asked() {
        return code;
    }
    let trials = trials![
        a_worker_killed_mid_run_loses_nothing,
        a_worker_killed_mid_batch_loses_nothing,
        a_dead_fork_server_only_means_workers_are_run_as_programs,
        stalls_in_one_batch_are_timeouts_not_a_dead_worker,
        garbage_from_a_worker_is_a_worker_crash,
        a_body_that_arrives_in_parts_is_read_whole,
        a_body_cut_short_is_a_worker_crash,
        a_worker_that_exits_mid_request_is_replaced_and_the_base_retried,
        a_worker_that_never_gets_ready_fails_the_start_in_bounded_time,
        a_worker_that_never_reads_its_settings_fails_the_start_in_bounded_time,
        a_worker_that_stops_reading_is_a_crash_not_a_hang,
        a_missing_worker_program_is_a_clear_error,
        a_worker_of_another_protocol_is_refused_by_name,
        the_default_worker_is_this_program_and_its_pool_reports_its_costs,
    ];
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}
