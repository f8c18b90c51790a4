//! Ten thousand bases at a thousand in flight, against the embedded server:
//! every base comes back, once, in order, within the concurrency bound.

use std::time::Duration;

use rates_core::{Config, Strategy};
use rates_server::{RatesServer, ServerConfig};
use rates_tokio::Tokio;

#[test]
fn ten_thousand_bases_at_a_thousand_in_flight() {
    let server =
        RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(5))).unwrap();
    let config = Config::new(&server.endpoint())
        .unwrap()
        .with_concurrency(1_000);
    let bases = rates_core::generated_codes(10_000);
    let report = Tokio::new().fetch(&bases, &config).unwrap();
    assert_eq!(report.outcomes.len(), 10_000);
    for (o, base) in report.outcomes.iter().zip(&bases) {
        assert_eq!(o.base, *base, "out of order");
        let rates = o.result.as_ref().unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!(rates.base, *base);
    }
    let stats = server.stats();
    assert_eq!(stats.requests, 10_000);
    assert!(
        stats.per_base.values().all(|n| *n == 1),
        "a base was requested twice"
    );
    assert!(
        stats.peak_in_flight <= 1_000,
        "{} in flight with concurrency 1,000",
        stats.peak_in_flight
    );
}
