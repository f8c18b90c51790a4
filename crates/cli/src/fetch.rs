//! `rates fetch`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use rates_core::{Config, CurrencyCode, RateLimit, parse_codes};
use rates_report::fetch::{json_report, print_totals, stream, with_progress};
use rates_report::names::named;
use rates_report::parse::{self, Bases};
use rates_report::{API_CONCURRENCY, API_RATE_PER_SECOND, Api, resources};
use rates_server::{Latency, RatesServer, ServerConfig};

#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// Strategy to use (see `rates strategies`).
    #[arg(long, short, default_value = "sync")]
    strategy: String,
    /// Base currencies: a comma-separated list, or a count of generated
    /// codes (AAA, AAB, ...) such as 2000.
    #[arg(long, short, default_value = rates_core::CLASSIC, value_parser = parse::bases)]
    bases: Bases,
    /// Currencies shown in each matrix row.
    #[arg(long, default_value = rates_core::CLASSIC)]
    symbols: String,
    /// URL template with {base} (and optionally {symbols}), http:// or
    /// https://; without it the embedded server is started on 127.0.0.1.
    /// With --api it replaces the service's URL: a whole template, or just
    /// an origin like https://127.0.0.1:8443 to which the API's path is added.
    #[arg(long, short)]
    endpoint: Option<String>,
    /// A real rates API over HTTPS, with a polite client's defaults
    /// (concurrency 2, rate limit 5/s): vatcomply
    /// (api.vatcomply.com/rates?base=...) or frankfurter
    /// (api.frankfurter.dev/v1/latest?base=...). Needs the network
    /// unless --endpoint points elsewhere.
    #[arg(long, value_parser = str::parse::<rates_report::Api>)]
    api: Option<Api>,
    /// Trust this root certificate (PEM) for https:// endpoints, in addition
    /// to the public roots: for a private CA, or the certificate `rates
    /// serve --tls` prints.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Most requests in flight at once [default: 4; 2 with --api].
    #[arg(long, short)]
    concurrency: Option<usize>,
    /// Client-side rate limit, like 10/s or 120/m (no burst beyond it)
    /// [default: none; 5/s with --api].
    #[arg(long, value_parser = str::parse::<RateLimit>)]
    rate_limit: Option<RateLimit>,
    /// Retries after a failed attempt (timeouts, connection errors, 429, 5xx).
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Timeout for one whole request, like 10s or 500ms.
    #[arg(long, default_value = "10s", value_parser = parse::duration)]
    timeout: Duration,
    /// Timeout for connecting.
    #[arg(long, default_value = "2s", value_parser = parse::duration)]
    connect_timeout: Duration,
    /// Latency of the embedded server (ignored with --endpoint): 100ms, or a
    /// range 50ms..150ms.
    #[arg(long, default_value = "100ms", value_parser = parse::latency)]
    latency: Latency,
    /// CPU work done on each successful response, in the strategy's own
    /// thread, task or child process: 0, 100us, 5ms (calibrated once).
    #[arg(long, default_value = "0", value_parser = parse::duration)]
    work: Duration,
    /// The most OS threads `threads`, `pool` and `rayon` start at once
    /// (default: what the OS limits allow; see the note printed when they
    /// bind).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_threads: Option<u64>,
    /// Also print this process's CPU time and peak memory (with --endpoint,
    /// the client's alone), and the run's syscalls per request, counted by
    /// the kernel over the threads and processes the run starts (n/a, with
    /// why, where the counter cannot be opened: scripts/perf-setup.sh).
    #[arg(long)]
    resources: bool,
    /// Print the whole report as JSON instead of the matrix.
    #[arg(long)]
    json: bool,
    /// Print matrix rows even for more than 50 bases (by default a large
    /// run prints only its failures and totals).
    #[arg(long)]
    all_rows: bool,
    /// Stop the whole run after this long (like 2s or 300ms): bases not
    /// done by then are reported as `cancelled` (cause `deadline`).
    /// Distinct from --timeout, which bounds one request.
    #[arg(long, value_parser = parse::duration)]
    deadline: Option<Duration>,
    /// Print each base's outcome the moment it is known, in the order they
    /// complete (a matrix row, or the error), instead of the matrix at the
    /// end; with --json, one JSON object per line (an outcome, with its
    /// `index` in the input).
    #[arg(long)]
    stream: bool,
}

/// The client's config from the flags, for `endpoint`: validated, so a
/// wrong setting is refused before anything starts.
fn client_config(a: &FetchArgs, endpoint: &str, symbols: Vec<CurrencyCode>) -> Result<Config> {
    let mut config = Config::new(endpoint).context("in --endpoint")?;
    if let Some(path) = &a.ca_cert {
        config = config.with_ca_cert_file(path).context("in --ca-cert")?;
    }
    config.symbols = symbols;
    let polite = a.api.is_some();
    config.concurrency = a
        .concurrency
        .unwrap_or(if polite { API_CONCURRENCY } else { 4 });
    config.rate_limit = match a.rate_limit {
        Some(limit) => Some(limit),
        None if polite => Some(RateLimit::per_second(API_RATE_PER_SECOND)?),
        None => None,
    };
    config.retry.retries = a.retries;
    config.request_timeout = a.timeout;
    config.connect_timeout = a.connect_timeout;
    if !a.work.is_zero() {
        config.work = Some(rates_core::Work::calibrated(a.work));
    }
    config.max_threads = a
        .max_threads
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if a.deadline == Some(Duration::ZERO) {
        anyhow::bail!("--deadline 0 leaves no time for the run: give it some, like 2s");
    }
    config.deadline = a.deadline;
    config.validate()?;
    Ok(config)
}

/// The report as text: the matrix (up to 50 rows unless --all-rows),
/// the failures by kind, the totals, the time and, with --resources, this
/// process's own CPU and memory.
fn print_plain(
    out: &mut impl std::io::Write,
    a: &FetchArgs,
    report: &rates_core::Report,
    config: &Config,
    embedded: bool,
) -> Result<()> {
    if report.outcomes.len() <= 50 || a.all_rows {
        write!(out, "{}", report.matrix(&config.symbols))?;
    }
    // The bases a stop left undone are counted, not listed.
    let failed: Vec<_> = report
        .failures()
        .filter(|o| {
            !o.result
                .as_ref()
                .is_err_and(rates_core::Error::is_cancelled)
        })
        .collect();
    if !failed.is_empty() {
        writeln!(
            out,
            "{} of {} bases failed:",
            failed.len(),
            report.outcomes.len()
        )?;
        for line in rates_report::fetch::failure_lines(failed.iter().copied(), 20) {
            writeln!(out, "  {}", named(&line))?;
        }
    }
    print_totals(&mut *out, report, false)?;
    if let Some(note) = &report.note {
        writeln!(out, "note: {}", named(note))?;
    }
    writeln!(out, "time elapsed: {:.2}s", report.wall.as_secs_f64())?;
    if let Some(usage) = resources::Usage::now().filter(|_| a.resources) {
        writeln!(
            out,
            "resources: cpu {:.2}s user + {:.2}s sys, peak rss {:.1} MiB{}",
            usage.user.as_secs_f64(),
            usage.system.as_secs_f64(),
            usage.peak_rss_bytes as f64 / f64::from(1 << 20),
            if embedded {
                " (this process alone, embedded server included: use --endpoint for the \
                 client alone, `rates compare` for the whole process tree)"
            } else {
                " (this process alone: `rates compare` measures the whole process tree)"
            }
        )?;
    }
    Ok(())
}

/// `--resources`' syscall line: the run's syscalls, per request sent, or
/// why they were not counted.
fn print_syscalls(
    out: &mut impl std::io::Write,
    count: &Result<u64, String>,
    requests: u64,
) -> Result<()> {
    match count {
        Ok(n) => writeln!(
            out,
            "syscalls: {n} ({:.2} per request; the run's threads and processes, counted by \
             the kernel, not the embedded server's)",
            *n as f64 / requests.max(1) as f64
        )?,
        Err(why) => writeln!(out, "syscalls: n/a: {why}")?,
    }
    Ok(())
}

pub(crate) fn run(a: &FetchArgs) -> Result<ExitCode> {
    let strategy = rates_registry::find(&a.strategy)?;
    // Validate every input before anything starts or is sent.
    let bases = a.bases.codes()?;
    let symbols = parse_codes(&a.symbols).context("in --symbols")?;
    let api_endpoint = a.api.map(|api| api.endpoint(a.endpoint.as_deref()));
    let server = match api_endpoint.as_ref().or(a.endpoint.as_ref()) {
        Some(_) => None,
        None => Some(
            RatesServer::start(ServerConfig {
                latency: a.latency,
                ..ServerConfig::default()
            })
            .context("starting the embedded server")?,
        ),
    };
    let endpoint = match (api_endpoint.as_ref().or(a.endpoint.as_ref()), &server) {
        (Some(e), _) => e.clone(),
        (None, Some(s)) => s.endpoint(),
        (None, None) => unreachable!("a server was started when no endpoint was given"),
    };
    let mut config = client_config(a, &endpoint, symbols)?;

    if let Some(api) = a.api {
        eprintln!(
            "note: --api {}: concurrency {}, rate limit {}, User-Agent {} (a polite client of a free service)",
            api.shape(),
            config.concurrency,
            config
                .rate_limit
                .map_or_else(|| "none".to_owned(), |r| r.to_string()),
            concat!("rates/", env!("CARGO_PKG_VERSION")),
        );
    }
    if let Some(note) = a.bases.note() {
        eprintln!("note: {note}");
    }
    // The run's plan, worked out once from the machine's limits (with the
    // embedded server's ends of the connections counted): say before
    // sending anything if fewer than asked will be held in flight.
    let plan = strategy.plan(
        bases.len(),
        &config,
        &rates_core::limits::MachineLimits::read(),
    );
    if let Some(why) = &plan.note {
        eprintln!("note: {}", named(why));
    }
    let in_flight = plan.in_flight;
    config.plan = Some(plan);
    {
        eprintln!(
            "fetching {} base{} with {} (concurrency {}, at most {in_flight} in flight) from {}",
            bases.len(),
            if bases.len() == 1 { "" } else { "s" },
            strategy.name(),
            config.concurrency,
            server.as_ref().map_or(endpoint.clone(), |s| format!(
                "the embedded server at {}",
                s.addr()
            )),
        );
    }
    let progress = rates_core::Progress::default();
    config.progress = Some(progress.clone());
    // Ctrl-C or SIGTERM stops the run; what was done is still printed.
    let stop = config.stop_handle();
    if a.stream {
        config.on_outcome = Some(stream(a.json, config.symbols.clone()));
    }
    let interrupts = rates_report::interrupt::Interrupts::watch(move || stop.cancel())?;
    // Counted from here, with --resources: this thread and every thread
    // and process the run starts (not the embedded server's, started before).
    let mut syscalls = a.resources.then(resources::Syscalls::start);
    let report = with_progress(&progress, bases.len(), || strategy.fetch(&bases, &config))?;
    let syscalls = syscalls.as_mut().map(resources::Syscalls::read);
    let interrupted = interrupts.exit_code();
    drop(interrupts);

    let mut out = std::io::stdout().lock();
    if a.stream {
        print_totals(&mut out, &report, a.json)?;
    } else if a.json {
        let mut doc = json_report(&report, &config);
        if let (Some(usage), Some(syscalls)) = (resources::Usage::now(), syscalls.clone()) {
            doc = doc.with_resources(&usage, syscalls, server.is_some());
        }
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        print_plain(&mut out, a, &report, &config, server.is_some())?;
        if let Some(count) = &syscalls {
            print_syscalls(&mut out, count, report.total_attempts())?;
        }
    }
    Ok(match interrupted {
        Some(code) => code,
        None if report.all_succeeded() => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    })
}
