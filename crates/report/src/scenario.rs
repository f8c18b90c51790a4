//! Named benchmark scenarios, defined once: `rates compare --scenario`, the
//! gate and the criterion benches read them here.

use std::time::Duration;

use rates_core::limits::MachineLimits;
use rates_core::plan::Plan;
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
        Scenario::new(
            "classic",
            "the classic five bases, 100 ms latency, concurrency 4",
            (5, ms(100), 4),
        ),
        Scenario::new(
            "fanout",
            "500 bases, 20 ms latency, concurrency 50",
            (500, ms(20), 50),
        ),
        Scenario::new(
            "scale",
            "10,000 bases, 50 ms latency, 1,000 in flight",
            (10_000, ms(50), 1_000),
        ),
        Scenario::new(
            "throttled",
            "200 bases, 5 ms latency, concurrency 16, rate limit 100/s",
            (200, ms(5), 16),
        )
        .with_rate_limit(RateLimit::per_second(100.0).ok()),
        Scenario::new(
            "overhead",
            "20,000 bases, no latency, concurrency 64: per-request cost",
            (20_000, Duration::ZERO, 64),
        ),
        // Each answer needs 1 ms of CPU: 200 ms of it in all, 100 ms on two
        // cores. Threads that hold a global lock while they compute (Python's
        // GIL) take the 200 ms; processes and Rust's threads split it.
        Scenario::new(
            "cpu",
            "200 bases, 5 ms latency, concurrency 16, 1 ms of CPU work per answer: what a \
             global lock does to threads",
            (200, ms(5), 16),
        )
        .with_work(ms(1)),
        Scenario::new(
            "gate",
            "4,000 bases, no latency, concurrency 64: per-request cost in runs short enough \
             for CI's paired gate",
            (4_000, Duration::ZERO, 64),
        ),
        Scenario::new(
            "faulty",
            "500 bases, 20 ms, concurrency 50, 10% 500s, 5% 429s, 2% drops (seeded)",
            (500, ms(20), 50),
        )
        .with_faults(vec![
            FaultRule::new(Fault::Drop, When::Share(0.02)),
            FaultRule::new(
                Fault::TooManyRequests {
                    retry_after_secs: 1,
                },
                When::Share(0.05),
            ),
            FaultRule::new(Fault::ServerError, When::Share(0.10)),
        ]),
        Scenario::new(
            "tls",
            "the classic five bases over HTTPS, 100 ms latency, concurrency 4: what the \
             handshake costs",
            (5, ms(100), 4),
        )
        .over_tls(),
        // 10,000 blocked OS threads next to the server and the bench harness
        // cost hundreds of MiB and minutes of start-up (rayon's idle workers
        // also hunt for work); `scale` already measures threads at 1,000.
        // Capped there, a thread-per-request strategy's ideal is 5 s, over
        // this scenario's 2 s budget: it is skipped with that reason, and
        // the async ones (ideal 0.5 s) run.
        Scenario::new(
            "huge",
            "100,000 bases, 50 ms latency, 10,000 in flight: async only (OS threads capped at \
             1,000, 2 s budget)",
            (100_000, ms(50), 10_000),
        )
        .with_max_threads(1_000)
        .with_budget(Duration::from_secs(2)),
        // `threads` too has requests in flight at the stop: waves of 200.
        // Every strategy stops after 1.5 s, whatever its ideal.
        Scenario::new(
            "cancel",
            "2,000 bases, 1 s latency, concurrency 200, the stop handle fired after 1.5 s: \
             time to stop, and what is left alive",
            (2_000, ms(1_000), 200),
        )
        .with_max_threads(200)
        .with_budget(Duration::MAX)
        .cancelled_after(ms(1_500)),
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
    /// A scenario of `size` bases, a server latency and a concurrency, and
    /// nothing else: no rate limit, no faults, no CPU work, plain HTTP, the
    /// machine's thread limit, a budget of [`MAX_IDEAL`], no stop.
    pub fn new(
        name: &'static str,
        about: &'static str,
        (size, latency, concurrency): (usize, Duration, usize),
    ) -> Self {
        Self {
            name,
            about,
            size,
            latency,
            concurrency,
            rate_limit: None,
            faults: Vec::new(),
            work: Duration::ZERO,
            tls: false,
            max_threads: None,
            budget: MAX_IDEAL,
            cancel_after: None,
        }
    }

    /// With a client rate limit.
    #[must_use]
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// With faults the server injects.
    #[must_use]
    pub fn with_faults(mut self, faults: Vec<FaultRule>) -> Self {
        self.faults = faults;
        self
    }

    /// With CPU work per item.
    #[must_use]
    pub fn with_work(mut self, work: Duration) -> Self {
        self.work = work;
        self
    }

    /// Served over HTTPS.
    #[must_use]
    pub fn over_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// With at most `max` OS threads for a thread-per-request strategy.
    #[must_use]
    pub fn with_max_threads(mut self, max: usize) -> Self {
        self.max_threads = Some(max);
        self
    }

    /// With another budget for a strategy's ideal.
    #[must_use]
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Each run's stop handle fired `after` its start.
    #[must_use]
    pub fn cancelled_after(mut self, after: Duration) -> Self {
        self.cancel_after = Some(after);
        self
    }

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

    /// The plan of `strategy`'s run of this scenario under `config` within
    /// `limits` (the limits of the process that will run it): the config's
    /// own plan if it has one, else the strategy's.
    pub fn plan(&self, strategy: &dyn Strategy, config: &Config, limits: &MachineLimits) -> Plan {
        config
            .plan
            .clone()
            .unwrap_or_else(|| strategy.plan(self.size, config, limits))
    }

    /// The ideal wall time for `strategy` run within `limits`:
    /// `ceil(N / in_flight) × latency`, at least `N / rate` under a rate
    /// limit, and with CPU work per item at least
    /// `N × work / min(in_flight, cores)`, where `in_flight` is what its
    /// [`plan`](Scenario::plan) holds. No run can beat it. Zero (none) where
    /// the runs are stopped part-way (`cancel`).
    pub fn ideal(
        &self,
        strategy: &dyn Strategy,
        config: &Config,
        limits: &MachineLimits,
    ) -> Duration {
        if self.cancel_after.is_some() {
            return Duration::ZERO;
        }
        let in_flight = self.plan(strategy, config, limits).in_flight.max(1);
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

    /// Why `strategy` is not run on this scenario within `limits`, if it is
    /// not: it cannot run on this machine at all
    /// ([`Strategy::unavailable`], say io_uring refused by the kernel), or
    /// its ideal time is over the scenario's [`budget`](Scenario::budget)
    /// (say, `sync` on `scale`: 10,000 x 50 ms, over [`MAX_IDEAL`]). The
    /// reason includes the plan's note (why it holds fewer than asked), if
    /// any.
    pub fn skip_reason(
        &self,
        strategy: &dyn Strategy,
        config: &Config,
        limits: &MachineLimits,
    ) -> Option<String> {
        if let Some(why) = strategy.unavailable() {
            return Some(format!("skipped: {why}"));
        }
        if !strategy.stoppable() && (self.cancel_after.is_some() || config.deadline.is_some()) {
            return Some(format!(
                "skipped: an external program cannot be stopped in the middle of a run \
                 (job protocol {} has no stop message); {} is for built-in strategies",
                crate::external::PROTOCOL,
                if self.cancel_after.is_some() {
                    "the cancel scenario"
                } else {
                    "--deadline"
                }
            ));
        }
        let plan = self.plan(strategy, config, limits);
        let ideal = self.ideal(strategy, config, limits);
        (ideal > self.budget).then(|| {
            format!(
                "skipped: with at most {} request(s) in flight its ideal here is {:.0} s, \
                 over the {} s budget of one run{}",
                plan.in_flight,
                ideal.as_secs_f64(),
                self.budget.as_secs(),
                plan.note.map(|why| format!(" ({why})")).unwrap_or_default()
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
            classic.ideal(&rates_sync::Sequential, &config, &MachineLimits::default()),
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
            throttled.ideal(&rates_sync::Sequential, &tconfig, &MachineLimits::default()),
            Duration::from_secs(2)
        );
        assert_eq!(config.concurrency, 50);
        let scale = scenario("scale").unwrap();
        let sconfig = scale.client_config("http://127.0.0.1:1/?b={base}").unwrap();
        let why = scale
            .skip_reason(&rates_sync::Sequential, &sconfig, &MachineLimits::default())
            .unwrap();
        assert!(why.contains("500 s"), "{why}");
        assert_eq!(
            fanout.skip_reason(&rates_sync::Sequential, &config, &MachineLimits::default()),
            None
        );
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
        let mut unavailable = Vec::new();
        for strategy in rates_registry::strategies() {
            match huge.skip_reason(strategy.as_ref(), &config, &MachineLimits::default()) {
                None => ran.push(strategy.name()),
                // io_uring refused on this machine: skipped for that alone.
                Some(why) if strategy.unavailable().is_some() => {
                    assert_eq!(
                        Some(why),
                        strategy.unavailable().map(|w| format!("skipped: {w}"))
                    );
                    unavailable.push(strategy.name());
                }
                Some(why) => {
                    assert!(
                        why.starts_with("skipped:") && why.contains("2 s budget"),
                        "{why}"
                    );
                }
            }
        }
        let asynchronous = [
            "tokio",
            "smol",
            "async-std",
            "sharded",
            "compio-uring",
            "compio-epoll",
        ];
        let expected: Vec<_> = asynchronous
            .into_iter()
            .filter(|name| !unavailable.contains(name))
            .collect();
        assert_eq!(ran, expected);
        let pool = huge
            .skip_reason(
                &rates_pool::PoolStrategy,
                &config,
                &MachineLimits::default(),
            )
            .unwrap();
        assert!(pool.contains("1000 threads instead of the 10000"), "{pool}");
        assert_eq!(
            huge.ideal(
                &rates_tokio::Tokio::new(),
                &config,
                &MachineLimits::default()
            ),
            Duration::from_millis(500)
        );
    }
}
