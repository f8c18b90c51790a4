//! Named benchmark scenarios, defined once (see `SCENARIOS.md` in the docs).

use std::time::Duration;

use rates_core::{Config, CurrencyCode, Error, RateLimit, Strategy, generated_codes};
use rates_server::{Fault, FaultRule, RatesServer, ServerConfig, When};

/// A benchmark scenario: how many bases, how the server behaves, how the
/// client is configured, and the ideal wall time no strategy can beat.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name (`classic`, `fanout`, ...).
    pub name: &'static str,
    /// One line on what it shows.
    pub about: &'static str,
    /// Number of bases (the classic five when 5).
    pub size: usize,
    /// Server latency per answer.
    pub latency: Duration,
    /// Client concurrency.
    pub concurrency: usize,
    /// Client rate limit, requests per second.
    pub rate_limit: Option<RateLimit>,
    /// Faults the server injects (seeded).
    pub faults: Vec<FaultRule>,
    /// CPU work per item on the client (zero for none), turned into a
    /// calibrated [`Work`](rates_core::Work) by [`client_config`](Self::client_config).
    pub work: Duration,
    /// Served over HTTPS, with a certificate the server generates and the
    /// client trusts ([`Scenario::client_config_for`]).
    pub tls: bool,
    /// The most OS threads a thread-per-request strategy may hold
    /// ([`Config::max_threads`]); `None`: what the machine allows.
    pub max_threads: Option<usize>,
    /// The longest ideal a strategy may have here and still be run (see
    /// [`Scenario::skip_reason`]); [`MAX_IDEAL`] unless the scenario says less.
    pub budget: Duration,
    /// Each run's stop handle is fired this long after the run starts (the
    /// `cancel` scenario: how fast each strategy stops, and what it leaves).
    pub cancel_after: Option<Duration>,
}

/// Every scenario, in report order.
pub fn scenarios() -> Vec<Scenario> {
    let ms = Duration::from_millis;
    vec![
        Scenario {
            name: "classic",
            about: "the classic five bases, 100 ms latency, concurrency 4",
            size: 5,
            latency: ms(100),
            concurrency: 4,
            rate_limit: None,
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "fanout",
            about: "500 bases, 20 ms latency, concurrency 50",
            size: 500,
            latency: ms(20),
            concurrency: 50,
            rate_limit: None,
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "scale",
            about: "10,000 bases, 50 ms latency, 1,000 in flight",
            size: 10_000,
            latency: ms(50),
            concurrency: 1_000,
            rate_limit: None,
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "throttled",
            about: "200 bases, 5 ms latency, concurrency 16, rate limit 100/s",
            size: 200,
            latency: ms(5),
            concurrency: 16,
            rate_limit: RateLimit::per_second(100.0).ok(),
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "overhead",
            about: "20,000 bases, no latency, concurrency 64: per-request cost",
            size: 20_000,
            latency: Duration::ZERO,
            concurrency: 64,
            rate_limit: None,
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "gate",
            about: "4,000 bases, no latency, concurrency 64: per-request cost in runs short \
                    enough for CI's paired gate",
            size: 4_000,
            latency: Duration::ZERO,
            concurrency: 64,
            rate_limit: None,
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "faulty",
            about: "500 bases, 20 ms, concurrency 50, 10% 500s, 5% 429s, 2% drops (seeded)",
            size: 500,
            latency: ms(20),
            concurrency: 50,
            rate_limit: None,
            faults: vec![
                FaultRule::new(Fault::Drop, When::Share(0.02)),
                FaultRule::new(
                    Fault::TooManyRequests {
                        retry_after_secs: 1,
                    },
                    When::Share(0.05),
                ),
                FaultRule::new(Fault::ServerError, When::Share(0.10)),
            ],
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "tls",
            about: "the classic five bases over HTTPS, 100 ms latency, concurrency 4: \
                    what the handshake costs",
            size: 5,
            latency: ms(100),
            concurrency: 4,
            rate_limit: None,
            faults: Vec::new(),
            tls: true,
            work: Duration::ZERO,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        },
        Scenario {
            name: "huge",
            about: "100,000 bases, 50 ms latency, 10,000 in flight: async only (OS threads \
                    capped at 1,000, 2 s budget)",
            size: 100_000,
            latency: ms(50),
            concurrency: 10_000,
            rate_limit: None,
            faults: Vec::new(),
            // 10,000 blocked OS threads next to the server and the bench
            // harness cost hundreds of MiB and minutes of start-up (rayon's
            // idle workers also hunt for work); `scale` already measures
            // threads at 1,000. Capped there, a thread-per-request strategy's
            // ideal is 5 s, over this scenario's 2 s budget: it is skipped
            // with that reason, and the async ones (ideal 0.5 s) run.
            max_threads: Some(1_000),
            budget: Duration::from_secs(2),
            cancel_after: None,
            work: Duration::ZERO,
            tls: false,
        },
        Scenario {
            name: "cancel",
            about: "2,000 bases, 1 s latency, concurrency 200, the stop handle fired after \
                    1.5 s: time to stop, and what is left alive",
            size: 2_000,
            latency: ms(1_000),
            concurrency: 200,
            rate_limit: None,
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            // `threads` too has requests in flight at the stop: waves of 200.
            max_threads: Some(200),
            // Every strategy stops after 1.5 s, whatever its ideal.
            budget: Duration::MAX,
            cancel_after: Some(ms(1_500)),
        },
    ]
}

/// The scenario called `name`.
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) naming `name` and
/// listing the scenarios.
pub fn scenario(name: &str) -> Result<Scenario, Error> {
    let all = scenarios();
    let names: Vec<&str> = all.iter().map(|s| s.name).collect();
    all.iter().find(|s| s.name == name).cloned().ok_or_else(|| {
        Error::invalid_input(format!(
            "unknown scenario `{name}`: choose one of {}",
            names.join(", ")
        ))
    })
}

impl Scenario {
    /// The bases: the classic five, or `size` generated three-letter codes
    /// (AAA, AAB, ...; they repeat past 17,576).
    pub fn bases(&self) -> Vec<CurrencyCode> {
        let classic = rates_core::classic();
        if self.size == classic.len() {
            return classic;
        }
        generated_codes(self.size)
    }

    /// The server configuration: latency, faults, a fixed seed, and TLS
    /// with a generated certificate when the scenario says so.
    pub fn server_config(&self) -> ServerConfig {
        let mut config = ServerConfig::default().with_latency(self.latency);
        config.faults.clone_from(&self.faults);
        config.seed = 0x5eed;
        if self.tls {
            config = config.with_generated_tls();
        }
        config
    }

    /// The client configuration for `server` (started from
    /// [`server_config`](Self::server_config)): its endpoint, and for a TLS
    /// scenario its certificate as a trusted root.
    ///
    /// # Errors
    /// When the server's endpoint is invalid.
    pub fn client_config_for(&self, server: &RatesServer) -> Result<Config, Error> {
        let mut config = self.client_config(&server.endpoint())?;
        config.ca_cert_pem = server.certificate_pem().map(str::to_owned);
        Ok(config)
    }

    /// The client configuration for a server at `endpoint`.
    ///
    /// # Errors
    /// When the endpoint is invalid.
    pub fn client_config(&self, endpoint: &str) -> Result<Config, Error> {
        let rate_limit = self.rate_limit;
        let mut config = Config::new(endpoint)?
            .with_concurrency(self.concurrency)
            .with_rate_limit(rate_limit)
            .with_max_threads(self.max_threads);
        if !self.faults.is_empty() {
            // Enough retries that every base gets through the seeded faults.
            config.retry.retries = 6;
        }
        if !self.work.is_zero() {
            config.work = Some(rates_core::Work::calibrated(self.work));
        }
        Ok(config)
    }

    /// The ideal wall time for `strategy`: `ceil(N / in_flight) × latency`,
    /// at least `N / rate` under a rate limit, and with CPU work per item at
    /// least `N × work / min(in_flight, cores)`. No run can beat it. Zero
    /// (none) where the runs are stopped part-way (`cancel`).
    pub fn ideal(&self, strategy: &dyn Strategy, config: &Config) -> Duration {
        if self.cancel_after.is_some() {
            return Duration::ZERO;
        }
        let mut in_flight = strategy.max_in_flight(self.size, config).max(1);
        if strategy.bounded() {
            // As `Strategy::fetch` will cap it, if the open-files limit is low.
            let limits = rates_core::limits::MachineLimits::read();
            if let Some((soft, hard)) = limits.open_files {
                let plan = rates_core::limits::plan_open_files(
                    in_flight,
                    config.files_per_connection(),
                    limits.files_in_use.unwrap_or(0),
                    soft,
                    hard,
                );
                in_flight = plan.connections.clamp(1, in_flight);
            }
        }
        let rounds = self.size.div_ceil(in_flight);
        let by_latency = self.latency * u32::try_from(rounds).unwrap_or(u32::MAX);
        let by_rate = self.rate_limit.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(self.size as f64 / r.rate())
        });
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let by_cpu = self
            .work
            .mul_f64(self.size as f64 / in_flight.min(cores) as f64);
        by_latency.max(by_rate).max(by_cpu)
    }

    /// Why `strategy` is not run on this scenario, if it is not: its ideal
    /// time is over the scenario's [`budget`](Scenario::budget) (say, `sync`
    /// on `scale`: 10,000 x 50 ms, over [`MAX_IDEAL`]). The reason includes
    /// the strategy's own [`limitation`](Strategy::limitation), if any.
    pub fn skip_reason(&self, strategy: &dyn Strategy, config: &Config) -> Option<String> {
        let ideal = self.ideal(strategy, config);
        (ideal > self.budget).then(|| {
            format!(
                "skipped: with at most {} request(s) in flight its ideal here is {:.0} s, \
                 over the {} s budget of one run{}",
                strategy.max_in_flight(self.size, config),
                ideal.as_secs_f64(),
                self.budget.as_secs(),
                strategy
                    .limitation(self.size, config)
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default()
            )
        })
    }
}

/// The longest ideal a benchmark run may have; strategies whose ideal on a
/// scenario is longer are skipped with a reason (see [`Scenario::skip_reason`]).
pub const MAX_IDEAL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideals_match_the_table() {
        let classic = scenario("classic").unwrap();
        let config = classic
            .client_config("http://127.0.0.1:1/?b={base}")
            .unwrap();
        assert_eq!(
            classic.ideal(&rates_sync::Sequential, &config),
            Duration::from_millis(500)
        );
        let fanout = scenario("fanout").unwrap();
        let config = fanout
            .client_config("http://127.0.0.1:1/?b={base}")
            .unwrap();
        assert_eq!(fanout.bases().len(), 500);
        let throttled = scenario("throttled").unwrap();
        let tconfig = throttled
            .client_config("http://127.0.0.1:1/?b={base}")
            .unwrap();
        assert_eq!(
            throttled.ideal(&rates_sync::Sequential, &tconfig),
            Duration::from_secs(2)
        );
        assert_eq!(config.concurrency, 50);
        let scale = scenario("scale").unwrap();
        let sconfig = scale.client_config("http://127.0.0.1:1/?b={base}").unwrap();
        let why = scale
            .skip_reason(&rates_sync::Sequential, &sconfig)
            .unwrap();
        assert!(why.contains("500 s"), "{why}");
        assert_eq!(fanout.skip_reason(&rates_sync::Sequential, &config), None);
    }

    #[test]
    fn tls_scenario_trusts_its_server() {
        let tls = scenario("tls").unwrap();
        assert_eq!(tls.bases().len(), 5);
        let server = RatesServer::start(tls.server_config()).unwrap();
        let config = tls.client_config_for(&server).unwrap();
        assert!(config.endpoint.is_https());
        assert_eq!(config.ca_cert_pem.as_deref(), server.certificate_pem());
        assert!(config.ca_cert_pem.is_some());
        let report = rates_sync::Sequential.fetch(&tls.bases(), &config).unwrap();
        assert!(
            report.all_succeeded(),
            "{:?}",
            report.failures().collect::<Vec<_>>()
        );
        assert!(server.stats().connections >= 1);
    }

    #[test]
    fn unknown_scenario_is_explained() {
        let err = scenario("enormous").unwrap_err();
        assert!(err.to_string().contains("`enormous`") && err.to_string().contains("fanout"));
    }

    #[test]
    fn huge_runs_async_strategies_and_skips_thread_per_request_ones_with_reasons() {
        let huge = scenario("huge").unwrap();
        assert_eq!(huge.bases().len(), 100_000);
        let config = huge.client_config("http://127.0.0.1:1/?b={base}").unwrap();
        assert_eq!(
            (config.concurrency, config.max_threads),
            (10_000, Some(1_000))
        );
        let mut ran = Vec::new();
        for strategy in crate::strategies() {
            match huge.skip_reason(strategy.as_ref(), &config) {
                None => ran.push(strategy.name()),
                Some(why) => {
                    assert!(
                        why.starts_with("skipped:") && why.contains("2 s budget"),
                        "{why}"
                    );
                }
            }
        }
        assert_eq!(ran, ["tokio", "smol", "async-std"]);
        let pool = huge
            .skip_reason(&rates_pool::PoolStrategy, &config)
            .unwrap();
        assert!(pool.contains("1000 threads instead of the 10000"), "{pool}");
        assert_eq!(
            huge.ideal(&rates_tokio::Tokio::new(), &config),
            Duration::from_millis(500)
        );
    }
}
