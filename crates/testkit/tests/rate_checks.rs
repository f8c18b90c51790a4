//! The rate-limit checks themselves: they must fail when a throttle lets
//! too much through, on the client's side and on the server's, each on its
//! own, for built-in strategies and for external programs.

use std::path::Path;

use rates_core::{Error, RateLimit, Run, Strategy, Throttle};
use rates_http::BlockingClient;
use rates_testkit::{Harness, check_named, checks, external_checks, failure_of};

/// Fetches with a throttle set to `factor` times the config's rate limit
/// (and 12 at a time): a throttle that is wrong.
#[derive(Debug)]
struct OverTheLimit(f64);

impl Strategy for OverTheLimit {
    fn name(&self) -> &'static str {
        "over-the-limit"
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let limit = run.config.rate_limit.map(|r| r.rate() * self.0);
        let throttle = limit.map(|r| Throttle::new(RateLimit::per_second(r).unwrap()));
        let client = BlockingClient::new(run.config, 12);
        std::thread::scope(|scope| {
            for lane in 0..12 {
                let (client, throttle) = (&client, throttle.as_ref());
                scope.spawn(move || {
                    for i in (lane..run.bases.len()).step_by(12) {
                        run.outcomes
                            .fill(i, |base| client.fetch(base, run.config, throttle));
                    }
                });
            }
        });
        Ok(None)
    }
}

#[test]
fn a_throttle_at_twice_the_limit_fails_the_client_side_check() {
    for check in [
        "rate_limit_holds_at_the_server",
        "rate_limit_holds_under_load",
    ] {
        let why = failure_of(&check_named(checks(), check), &OverTheLimit(2.0));
        assert!(
            why.contains("the client sent") && why.contains("in one second"),
            "{check}: {why}"
        );
    }
}

/// Runs `strategy` as `rate_limit_holds_under_load` does (24 bases, each
/// failing once, 20/s, 12 in flight) and returns the send log and the
/// server's statistics.
fn loaded_run(strategy: &dyn Strategy) -> (Vec<std::time::Instant>, rates_server::Stats) {
    use rates_server::{Fault, FaultRule, ServerConfig, When};
    let harness = Harness::default();
    let server = harness.server(
        ServerConfig::default()
            .with_latency(std::time::Duration::from_millis(10))
            .with_fault(FaultRule::new(Fault::ServerError, When::FirstPerBase(1))),
    );
    let progress = rates_core::Progress::default();
    let mut config = harness
        .config(&server)
        .with_concurrency(12)
        .with_rate_limit(Some(RateLimit::per_second(20.0).unwrap()));
    config.progress = Some(progress.clone());
    let names = rates_core::generated_codes(24);
    let report = strategy.fetch(&names, &config).unwrap();
    assert!(report.all_succeeded());
    (progress.sends(), server.stats())
}

#[test]
fn a_throttle_ten_percent_over_fails_each_side_on_its_own() {
    let (sends, stats) = loaded_run(&OverTheLimit(1.1));
    assert_eq!(sends.len(), 48);
    let client = rates_testkit::sends_within_limit(&sends, 20).unwrap_err();
    assert!(client.contains("the client sent 2"), "{client}");
    let server = rates_testkit::arrivals_held(&stats, 20).unwrap_err();
    assert!(server.contains("the server saw 2"), "{server}");
    // The same run judged against 10% more passes on both sides: the
    // checks fail it for its rate, not for anything else.
    assert_eq!(rates_testkit::sends_within_limit(&sends, 22), Ok(()));
    assert_eq!(rates_testkit::arrivals_held(&stats, 22), Ok(()));
}

#[test]
fn the_real_throttle_passes_each_side() {
    let pool = rates_registry::find("pool").unwrap();
    let (sends, stats) = loaded_run(&*pool);
    assert_eq!(rates_testkit::sends_within_limit(&sends, 20), Ok(()));
    assert_eq!(rates_testkit::arrivals_held(&stats, 20), Ok(()));
}

#[test]
fn an_external_client_ten_percent_over_fails_the_server_side_check() {
    // py-asyncio handed a job whose rate limit jq raised by 10%.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let setup = std::process::Command::new("bash")
        .arg(root.join("scripts/python-clients.sh"))
        .output()
        .expect("bash scripts/python-clients.sh");
    assert!(
        setup.status.success(),
        "scripts/python-clients.sh: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let fake = rates_report::external::External::new(
        "py-asyncio-over",
        "jq -c '.rate_limit_per_s *= 1.1' | python/.venv/bin/python python/rates_asyncio.py",
        &root.join("clients"),
        "tasks",
        "py-asyncio with its rate limit raised 10%",
    )
    .unwrap();
    let why = failure_of(
        &check_named(external_checks(), "rate_limit_holds_under_load_alone"),
        &fake,
    );
    assert!(why.contains("the server saw 2"), "{why}");
}
