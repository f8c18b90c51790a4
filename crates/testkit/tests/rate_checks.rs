//! The rate-limit checks themselves: they must fail when a throttle lets
//! too much through, on the client's side and on the server's.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rates_core::{Error, RateLimit, Run, Strategy, Throttle};
use rates_http::BlockingClient;
use rates_testkit::{Harness, checks};

/// Fetches with a throttle set to twice the config's rate limit (and 12
/// at a time): a throttle that is wrong.
#[derive(Debug)]
struct TwiceTheLimit;

impl Strategy for TwiceTheLimit {
    fn name(&self) -> &'static str {
        "twice-the-limit"
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let limit = run.config.rate_limit.map(|r| r.rate() * 2.0);
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

fn failure_of(check: &str) -> String {
    let check = checks()
        .into_iter()
        .find(|c| c.name == check)
        .unwrap_or_else(|| panic!("no check {check}"));
    let harness = Harness::default();
    let caught = catch_unwind(AssertUnwindSafe(|| (check.run)(&TwiceTheLimit, &harness)));
    let payload = caught.expect_err("a throttle at twice the limit must fail the check");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn a_throttle_at_twice_the_limit_fails_the_client_side_check() {
    for check in [
        "rate_limit_holds_at_the_server",
        "rate_limit_holds_under_load",
    ] {
        let why = failure_of(check);
        assert!(
            why.contains("the client sent") && why.contains("in one second"),
            "{check}: {why}"
        );
    }
}

#[test]
fn each_side_fails_on_its_own_when_the_throttle_is_wrong() {
    let harness = Harness::default();
    let server = harness.server(rates_server::ServerConfig::default());
    let progress = rates_core::Progress::default();
    let mut config = harness
        .config(&server)
        .with_rate_limit(Some(RateLimit::per_second(5.0).unwrap()));
    config.progress = Some(progress.clone());
    let names = rates_core::generated_codes(12);
    let report = TwiceTheLimit.fetch(&names, &config).unwrap();
    assert!(report.all_succeeded());
    let sends = progress.sends();
    assert_eq!(sends.len(), 12);
    let client = rates_testkit::sends_within_limit(&sends, 5).unwrap_err();
    assert!(client.contains("the client sent"), "{client}");
    let server_side = rates_testkit::arrivals_within_limit(&sends, &server.stats(), 5);
    match server_side {
        Err(why) => assert!(why.contains("the server saw"), "{why}"),
        // Only on a machine too loaded to judge the server's count.
        Ok(Some(note)) => assert!(note.contains("not judged"), "{note}"),
        Ok(None) => panic!("the server's count passed a throttle at twice the limit"),
    }
    // The same run judged against twice the limit passes on both sides.
    assert_eq!(rates_testkit::sends_within_limit(&sends, 10), Ok(()));
}
