//! Blocking code inside async: the blocking client through spawn_blocking,
//! bounded by the concurrency and by the blocking pool.

use std::time::Duration;

use rates_core::limits::MachineLimits;
use rates_core::{Config, Strategy};
use rates_server::{RatesServer, ServerConfig};
use rates_tokio::{BLOCKING_THREADS, TokioBlocking};

#[test]
fn in_flight_stays_within_the_concurrency() {
    let server =
        RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(20)))
            .unwrap();
    let config = Config::new(&server.endpoint()).unwrap().with_concurrency(4);
    let names: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "A{}{}",
                char::from(b'A' + i / 26),
                char::from(b'A' + i % 26)
            )
        })
        .collect();
    let bases: Vec<&str> = names.iter().map(String::as_str).collect();
    let report = TokioBlocking::new().fetch_codes(&bases, &config).unwrap();
    assert!(report.all_succeeded());
    let got: Vec<&str> = report.outcomes.iter().map(|o| o.base.as_str()).collect();
    assert_eq!(got, bases);
    let stats = server.stats();
    assert_eq!(stats.requests, 30);
    assert!(stats.peak_in_flight <= 4, "{}", stats.peak_in_flight);
}

#[test]
fn the_blocking_pool_caps_what_is_in_flight_and_says_so() {
    let strategy = TokioBlocking::new();
    let config = Config::new("http://127.0.0.1:1/?b={base}")
        .unwrap()
        .with_concurrency(1_000);
    let unknown = MachineLimits::default();
    let plan = strategy.plan(10_000, &config, &unknown);
    assert_eq!(plan.in_flight, BLOCKING_THREADS);
    let why = plan.note.unwrap();
    assert!(why.contains("512") && why.contains("1000"), "{why}");
    let plan = strategy.plan(20, &config, &unknown);
    assert_eq!((plan.in_flight, plan.note), (20, None));
    assert_eq!(
        strategy
            .plan(10_000, &config.with_concurrency(64), &unknown)
            .note,
        None
    );
}

#[test]
fn fewer_threads_allowed_than_the_concurrency_caps_the_calls_in_flight() {
    let server =
        RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(10)))
            .unwrap();
    let config = Config::new(&server.endpoint())
        .unwrap()
        .with_concurrency(50)
        .with_max_threads(Some(5));
    let strategy = TokioBlocking::new();
    let plan = strategy.plan(100, &config, &MachineLimits::read());
    assert_eq!(plan.in_flight, 5);
    let why = plan.note.unwrap();
    assert!(why.contains("starts 5 threads instead of the 50"), "{why}");
    let bases = rates_core::generated_codes(100);
    let report = strategy.fetch(&bases, &config).unwrap();
    assert!(report.all_succeeded());
    assert_eq!(report.outcomes.len(), 100);
    assert_eq!(report.note.as_deref(), Some(why.as_str()));
    let stats = server.stats();
    assert_eq!(stats.requests, 100);
    assert!(stats.peak_in_flight <= 5, "{}", stats.peak_in_flight);
}
