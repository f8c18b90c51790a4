//! The checks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rates_core::{CurrencyCode, ErrorKind, Outcome, RateLimit, Strategy};
use rates_server::{Fault, FaultRule, RatesServer, ServerConfig, When};

use crate::{Harness, run};

/// One conformance check.
#[derive(Clone, Copy, Debug)]
pub struct Check {
    /// Its name, as it appears in the test list.
    pub name: &'static str,
    /// Runs it; panics with a message naming the strategy on failure.
    pub run: fn(&dyn Strategy, &Harness),
}

/// The classic matrix for the five classic bases, as the server's table gives it.
pub const CLASSIC_MATRIX: &str = "\
1 USD =     1.0 USD,   0.887 EUR,     3.8 PLN,    8.53 NOK,    22.7 CZK
1 EUR =    1.13 USD,     1.0 EUR,    4.29 PLN,    9.62 NOK,    25.6 CZK
1 PLN =   0.263 USD,   0.233 EUR,     1.0 PLN,    2.24 NOK,    5.97 CZK
1 NOK =   0.117 USD,   0.104 EUR,   0.446 PLN,     1.0 NOK,    2.66 CZK
1 CZK =   0.044 USD,   0.039 EUR,   0.167 PLN,   0.375 NOK,     1.0 CZK
";

/// The classic five, as the checks pass them.
fn classic() -> Vec<&'static str> {
    rates_core::CLASSIC.split(',').collect()
}

/// Every check, in a stable order.
pub fn checks() -> Vec<Check> {
    macro_rules! list {
        ($($f:ident),* $(,)?) => { vec![$(Check { name: stringify!($f), run: $f }),*] };
    }
    list![
        classic_matrix,
        many_bases_in_order,
        invalid_base_sends_nothing,
        empty_input,
        server_error_then_success,
        retry_after_is_honoured,
        malformed_json_fails_one_base,
        dropped_connection_is_retried,
        persistent_drop_is_a_connection_error,
        truncated_body_is_retried,
        stalled_server_times_out,
        nothing_listening,
        body_cap,
        not_found_is_not_retried,
        one_failing_base_spares_the_others,
        rate_limit_holds_at_the_server,
        rate_limit_holds_under_load,
        progress_counts_every_base_once,
        latency_excludes_the_throttle_wait,
        concurrency_bound_holds_at_the_server,
        cpu_work_is_done_once_per_base,
        user_agent_names_the_project,
        frankfurter_shape,
        tls_classic_matrix,
        tls_failing_base,
        tls_stalled_server_times_out,
        tls_body_cap,
        tls_untrusted_certificate_is_refused,
    ]
}

fn codes(list: &[&str]) -> Vec<CurrencyCode> {
    list.iter()
        .map(|c| c.parse().unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn many(n: usize) -> Vec<String> {
    rates_core::generated_codes(n)
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

fn error_of<'a>(s: &dyn Strategy, o: &'a Outcome) -> &'a rates_core::Error {
    o.result
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("{}: {} succeeded but should have failed", s.name(), o.base))
}

fn classic_matrix(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let config = h.config(&server);
    let report = run(s, &classic(), &config);
    assert!(
        report.all_succeeded(),
        "{}: {:?}",
        s.name(),
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(
        report.matrix(&config.symbols),
        CLASSIC_MATRIX,
        "{}",
        s.name()
    );
    assert_eq!(report.total_attempts(), 5, "{}", s.name());
}

fn many_bases_in_order(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default().with_latency(Duration::from_millis(2)));
    let config = h.config(&server).with_concurrency(8);
    let names = many(200);
    let bases: Vec<&str> = names.iter().map(String::as_str).collect();
    let report = run(s, &bases, &config);
    assert_eq!(report.outcomes.len(), 200, "{}", s.name());
    for (o, want) in report.outcomes.iter().zip(&bases) {
        assert_eq!(o.base.as_str(), *want, "{}: out of order", s.name());
        let rates = o
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {}: {e}", s.name(), o.base));
        assert_eq!(rates.base, o.base, "{}", s.name());
    }
    let stats = server.stats();
    assert_eq!(
        stats.requests,
        200,
        "{}: each base requested exactly once",
        s.name()
    );
    assert!(stats.per_base.values().all(|n| *n == 1), "{}", s.name());
}

fn invalid_base_sends_nothing(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let config = h.config(&server);
    let err = s.fetch_codes(&["USD", "U5D", "EUR"], &config).unwrap_err();
    assert!(err.is_invalid_input(), "{}: {err}", s.name());
    assert!(err.to_string().contains("U5D"), "{}: {err}", s.name());
    assert_eq!(
        server.stats().requests,
        0,
        "{}: a request was sent",
        s.name()
    );
}

fn empty_input(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let config = h.config(&server);
    let report = run(s, &[], &config);
    assert!(report.outcomes.is_empty(), "{}", s.name());
    assert_eq!(server.stats().requests, 0, "{}", s.name());
}

fn server_error_then_success(s: &dyn Strategy, h: &Harness) {
    let server = h.server(
        ServerConfig::default()
            .with_fault(FaultRule::new(Fault::ServerError, When::FirstPerBase(1))),
    );
    let config = h.config(&server);
    let report = run(s, &classic(), &config);
    for o in &report.outcomes {
        assert!(o.result.is_ok(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 2, "{}: {}", s.name(), o.base);
    }
    let stats = server.stats();
    assert_eq!(stats.status_count(500), 5, "{}", s.name());
    assert_eq!(stats.status_count(200), 5, "{}", s.name());
}

fn retry_after_is_honoured(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default().with_fault(FaultRule::new(
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        When::FirstPerBase(1),
    )));
    let config = h.config(&server);
    let report = run(s, &["USD", "EUR"], &config);
    assert!(report.all_succeeded(), "{}", s.name());
    let stats = server.stats();
    for base in codes(&["USD", "EUR"]) {
        let times = stats.arrivals_of(base);
        assert_eq!(times.len(), 2, "{}: {base}: {times:?}", s.name());
        let gap = times[1] - times[0];
        assert!(
            gap >= Duration::from_secs(1),
            "{}: {base} retried {gap:?} after a 429 with Retry-After: 1",
            s.name()
        );
    }
}

fn malformed_json_fails_one_base(s: &dyn Strategy, h: &Harness) {
    let eur: CurrencyCode = "EUR".parse().unwrap_or_else(|e| panic!("{e}"));
    let server = h.server(
        ServerConfig::default().with_fault(FaultRule::new(Fault::Malformed, When::Base(eur))),
    );
    let config = h.config(&server);
    let report = run(s, &classic(), &config);
    for o in &report.outcomes {
        if o.base == eur {
            assert!(error_of(s, o).is_decode(), "{}: {o}", s.name());
            assert_eq!(o.attempts, 1, "{}: decode errors are not retried", s.name());
        } else {
            assert!(o.result.is_ok(), "{}: {o}", s.name());
        }
    }
}

fn dropped_connection_is_retried(s: &dyn Strategy, h: &Harness) {
    let server = h.server(
        ServerConfig::default().with_fault(FaultRule::new(Fault::Drop, When::FirstPerBase(1))),
    );
    let config = h.config(&server);
    let report = run(s, &classic(), &config);
    for o in &report.outcomes {
        assert!(o.result.is_ok(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 2, "{}: {o}", s.name());
    }
}

fn persistent_drop_is_a_connection_error(s: &dyn Strategy, h: &Harness) {
    let server =
        h.server(ServerConfig::default().with_fault(FaultRule::new(Fault::Drop, When::Always)));
    let config = h.config(&server).with_retries(2);
    let report = run(s, &["USD", "EUR"], &config);
    for o in &report.outcomes {
        assert!(error_of(s, o).is_connection(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 3, "{}: {o}", s.name());
    }
    assert_eq!(server.stats().requests, 6, "{}", s.name());
}

fn truncated_body_is_retried(s: &dyn Strategy, h: &Harness) {
    let server = h.server(
        ServerConfig::default().with_fault(FaultRule::new(Fault::Truncated, When::FirstPerBase(1))),
    );
    let config = h.config(&server);
    let report = run(s, &classic(), &config);
    for o in &report.outcomes {
        assert!(o.result.is_ok(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 2, "{}: {o}", s.name());
    }
}

fn stalled_server_times_out(s: &dyn Strategy, h: &Harness) {
    let server =
        h.server(ServerConfig::default().with_fault(FaultRule::new(Fault::Stall, When::Always)));
    times_out_on(s, h, &server);
}

/// Against a server that never answers: two attempts per base, each ending
/// with the request timeout, far below the server's 60 s stall.
fn times_out_on(s: &dyn Strategy, h: &Harness, server: &RatesServer) {
    let timeout = Duration::from_millis(300);
    let config = h
        .config(server)
        .with_retries(1)
        .with_request_timeout(timeout);
    let started = Instant::now();
    let report = run(s, &["USD", "EUR"], &config);
    let elapsed = started.elapsed();
    for o in &report.outcomes {
        assert!(error_of(s, o).is_timeout(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 2, "{}: {o}", s.name());
    }
    // Two attempts per base, at most two bases one after the other, plus
    // backoff and generous slack for start-up.
    let bound = timeout * 4 + Duration::from_secs(5);
    assert!(
        elapsed < bound,
        "{}: took {elapsed:?}, bound {bound:?}",
        s.name()
    );
}

fn nothing_listening(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let config = h.config(&server).with_retries(1);
    drop(server);
    let started = Instant::now();
    let report = run(s, &classic(), &config);
    for o in &report.outcomes {
        assert!(error_of(s, o).is_connection(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 2, "{}: {o}", s.name());
    }
    // A refused connection fails at once; nothing should wait for a timeout.
    assert!(
        started.elapsed() < config.connect_timeout * 2,
        "{}: took {:?}",
        s.name(),
        started.elapsed()
    );
}

fn body_cap(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let mut config = h.config(&server);
    config.max_body_bytes = 40;
    let report = run(s, &["USD", "EUR"], &config);
    for o in &report.outcomes {
        assert!(error_of(s, o).is_body_too_large(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 1, "{}: {o}", s.name());
    }
}

fn not_found_is_not_retried(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let mut config = h.config(&server);
    config.endpoint = format!("http://{}/nowhere?base={{base}}", server.addr())
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let report = run(s, &["USD"], &config);
    let o = &report.outcomes[0];
    assert_eq!(
        error_of(s, o).kind(),
        ErrorKind::Status(404),
        "{}: {o}",
        s.name()
    );
    assert_eq!(o.attempts, 1, "{}", s.name());
}

fn one_failing_base_spares_the_others(s: &dyn Strategy, h: &Harness) {
    let pln: CurrencyCode = "PLN".parse().unwrap_or_else(|e| panic!("{e}"));
    let server = h.server(
        ServerConfig::default().with_fault(FaultRule::new(Fault::ServerError, When::Base(pln))),
    );
    let config = h.config(&server).with_retries(2);
    let report = run(s, &classic(), &config);
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1, "{}: {failed:?}", s.name());
    assert_eq!(failed[0].base, pln, "{}", s.name());
    assert_eq!(
        error_of(s, failed[0]).status_code(),
        Some(500),
        "{}",
        s.name()
    );
    assert_eq!(failed[0].attempts, 3, "{}", s.name());
    let per_base: BTreeMap<_, _> = server.stats().per_base;
    assert_eq!(per_base[&pln], 3, "{}", s.name());
}

fn rate_limit_holds_at_the_server(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let limit = 5;
    let config = h.config(&server).with_rate_limit(Some(
        RateLimit::per_second(f64::from(limit)).unwrap_or_else(|e| panic!("{e}")),
    ));
    let names = many(12);
    let bases: Vec<&str> = names.iter().map(String::as_str).collect();
    let report = run(s, &bases, &config);
    assert!(report.all_succeeded(), "{}", s.name());
    let stats = server.stats();
    assert_eq!(stats.requests, 12, "{}", s.name());
    let peak = stats.max_in_window(Duration::from_secs(1));
    assert!(
        peak <= limit as usize,
        "{}: {peak} requests in one second, limit {limit}",
        s.name()
    );
}

/// The client-side rate limit holds at the server under load: many bases,
/// many in flight (a worker process each for `process`, whose workers send
/// at slots the parent reserved), retries going through the same throttle,
/// CPU work on every answer, and every worker competing for two cores.
fn rate_limit_holds_under_load(s: &dyn Strategy, h: &Harness) {
    let server = h.server(
        ServerConfig::default()
            .with_latency(Duration::from_millis(10))
            .with_fault(FaultRule::new(Fault::ServerError, When::FirstPerBase(1))),
    );
    let limit = 20;
    let config = h
        .config(&server)
        .with_concurrency(12)
        .with_work(Some(rates_core::Work::calibrated(Duration::from_millis(2))))
        .with_rate_limit(Some(
            RateLimit::per_second(f64::from(limit)).unwrap_or_else(|e| panic!("{e}")),
        ));
    let names = many(24);
    let bases: Vec<&str> = names.iter().map(String::as_str).collect();
    let report = run(s, &bases, &config);
    assert!(report.all_succeeded(), "{}", s.name());
    let stats = server.stats();
    assert_eq!(stats.requests, 48, "{}: each base twice", s.name());
    let peak = stats.max_in_window(Duration::from_secs(1));
    assert!(
        peak <= limit as usize,
        "{}: {peak} requests in one second, limit {limit}",
        s.name()
    );
}

/// The run's progress counts every base once, failures included, and one
/// latency per request sent.
fn progress_counts_every_base_once(s: &dyn Strategy, h: &Harness) {
    let pln: CurrencyCode = "PLN".parse().unwrap_or_else(|e| panic!("{e}"));
    let server = h.server(
        ServerConfig::default().with_fault(FaultRule::new(Fault::ServerError, When::Base(pln))),
    );
    let progress = rates_core::Progress::default();
    let mut config = h.config(&server).with_retries(1);
    config.progress = Some(progress.clone());
    let report = run(s, &classic(), &config);
    assert_eq!(report.failures().count(), 1, "{}", s.name());
    assert_eq!(progress.done(), 5, "{}: one per base", s.name());
    assert_eq!(
        progress.requests(),
        report.total_attempts(),
        "{}: one latency per request",
        s.name()
    );
}

/// A request's latency runs from when it was sent, not from when its base
/// began waiting for a throttle slot (for `process`: from when the worker
/// sent it at the slot the parent reserved).
fn latency_excludes_the_throttle_wait(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let progress = rates_core::Progress::default();
    let limit = RateLimit::per_second(2.0).unwrap_or_else(|e| panic!("{e}"));
    let mut config = h
        .config(&server)
        .with_concurrency(4)
        .with_rate_limit(Some(limit));
    config.progress = Some(progress.clone());
    let report = run(s, &classic()[..4], &config);
    assert!(report.all_succeeded(), "{}", s.name());
    // The last of four waits three intervals (over 1.5 s) for its slot;
    // none of that is the request's own latency.
    let slowest = progress
        .latency_quantile(1.0)
        .unwrap_or_else(|| panic!("{}: no latency recorded", s.name()));
    assert!(
        slowest < limit.interval() * 3,
        "{}: a request's latency of {slowest:?} includes its wait for the throttle",
        s.name()
    );
}

fn concurrency_bound_holds_at_the_server(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default().with_latency(Duration::from_millis(40)));
    let config = h.config(&server).with_concurrency(3);
    let names = many(24);
    let bases: Vec<&str> = names.iter().map(String::as_str).collect();
    let report = run(s, &bases, &config);
    assert!(report.all_succeeded(), "{}", s.name());
    let peak = server.stats().peak_in_flight;
    let promised = s.max_in_flight(24, &config);
    assert!(
        peak <= promised,
        "{}: {peak} in flight, promised at most {promised}",
        s.name()
    );
    if s.bounded() {
        assert!(
            peak <= 3,
            "{}: {peak} in flight with concurrency 3",
            s.name()
        );
    }
}

/// With CPU work per item, the results are the same, and the work is done
/// exactly once for every base that succeeded (by the strategy's own
/// workers: threads, tasks or child processes, which report it back).
fn cpu_work_is_done_once_per_base(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default().with_latency(Duration::from_millis(1)));
    let progress = rates_core::Progress::default();
    let mut config = h
        .config(&server)
        .with_work(Some(rates_core::Work::calibrated(Duration::from_micros(
            200,
        ))));
    config.progress = Some(progress.clone());
    let report = run(s, &classic(), &config);
    assert_eq!(
        report.matrix(&config.symbols),
        CLASSIC_MATRIX,
        "{}: work must not change results",
        s.name()
    );
    assert_eq!(progress.worked(), 5, "{}: work once per base", s.name());
    // A failed answer gets no work.
    let progress = rates_core::Progress::default();
    let mut failing = h
        .config(&server)
        .with_work(Some(rates_core::Work::iterations(1_000)));
    failing.endpoint = format!("http://{}/nowhere?base={{base}}", server.addr())
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    failing.progress = Some(progress.clone());
    let report = run(s, &["USD", "EUR"], &failing);
    assert_eq!(report.failures().count(), 2, "{}", s.name());
    assert_eq!(progress.worked(), 0, "{}: no work on a 404", s.name());
}

fn user_agent_names_the_project(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default());
    let config = h.config(&server);
    let report = run(s, &classic(), &config);
    assert!(report.all_succeeded(), "{}", s.name());
    let agents = server.stats().user_agents;
    let want = format!("rates/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        agents.keys().collect::<Vec<_>>(),
        [&want],
        "{}: every request names the project and its version",
        s.name()
    );
}

fn frankfurter_shape(s: &dyn Strategy, h: &Harness) {
    let server = h.server(ServerConfig::default().with_shape(rates_server::Shape::Frankfurter));
    let config = h.config(&server);
    assert!(
        config.endpoint.template().contains("/v1/latest?"),
        "{}",
        config.endpoint
    );
    let report = run(s, &classic(), &config);
    assert!(report.all_succeeded(), "{}", s.name());
    assert_eq!(
        report.matrix(&config.symbols),
        CLASSIC_MATRIX,
        "{}",
        s.name()
    );
}

fn tls_classic_matrix(s: &dyn Strategy, h: &Harness) {
    let server = h.tls_server(ServerConfig::default());
    let config = h.config(&server);
    assert!(config.endpoint.is_https(), "{}", config.endpoint);
    let report = run(s, &classic(), &config);
    assert!(
        report.all_succeeded(),
        "{}: {:?}",
        s.name(),
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(
        report.matrix(&config.symbols),
        CLASSIC_MATRIX,
        "{}",
        s.name()
    );
    assert_eq!(report.total_attempts(), 5, "{}", s.name());
    let stats = server.stats();
    assert_eq!(stats.status_count(200), 5, "{}", s.name());
    assert!(
        (1..=5).contains(&stats.connections),
        "{}: {} connections for 5 requests",
        s.name(),
        stats.connections
    );
}

fn tls_failing_base(s: &dyn Strategy, h: &Harness) {
    let pln: CurrencyCode = "PLN".parse().unwrap_or_else(|e| panic!("{e}"));
    let server = h.tls_server(
        ServerConfig::default().with_fault(FaultRule::new(Fault::ServerError, When::Base(pln))),
    );
    let config = h.config(&server).with_retries(2);
    let report = run(s, &classic(), &config);
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1, "{}: {failed:?}", s.name());
    assert_eq!(failed[0].base, pln, "{}", s.name());
    assert_eq!(
        error_of(s, failed[0]).status_code(),
        Some(500),
        "{}",
        s.name()
    );
    assert_eq!(failed[0].attempts, 3, "{}", s.name());
    assert_eq!(server.stats().per_base[&pln], 3, "{}", s.name());
}

fn tls_stalled_server_times_out(s: &dyn Strategy, h: &Harness) {
    let server = h
        .tls_server(ServerConfig::default().with_fault(FaultRule::new(Fault::Stall, When::Always)));
    times_out_on(s, h, &server);
}

fn tls_body_cap(s: &dyn Strategy, h: &Harness) {
    let server = h.tls_server(ServerConfig::default());
    let mut config = h.config(&server);
    config.max_body_bytes = 40;
    let report = run(s, &["USD", "EUR"], &config);
    for o in &report.outcomes {
        assert!(error_of(s, o).is_body_too_large(), "{}: {o}", s.name());
        assert_eq!(o.attempts, 1, "{}: {o}", s.name());
    }
}

/// No CA given, and a CA that is not the server's: both are refused with
/// the TLS error kind, at the first attempt (a certificate does not change
/// on retry), before any request reaches the server.
fn tls_untrusted_certificate_is_refused(s: &dyn Strategy, h: &Harness) {
    let server = h.tls_server(ServerConfig::default());
    let other = h.tls_server(ServerConfig::default());
    let wrong_ca = other.certificate_pem().map(str::to_owned);
    for ca in [None, wrong_ca] {
        let mut config = h.config(&server).with_retries(3);
        config.ca_cert_pem = ca;
        let report = run(s, &classic(), &config);
        for o in &report.outcomes {
            let err = error_of(s, o);
            assert!(err.is_tls(), "{}: {o}", s.name());
            assert!(
                err.to_string().contains("not trusted") && err.to_string().contains("--ca-cert"),
                "{}: {err}",
                s.name()
            );
            assert_eq!(o.attempts, 1, "{}: {o}", s.name());
        }
        assert_eq!(server.stats().requests, 0, "{}", s.name());
    }
}
