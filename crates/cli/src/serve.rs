//! `rates serve`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use rates_core::RateLimit;
use rates_server::{Fault, FaultRule, Latency, RatesServer, ServerConfig, ServerTls, Shape, When};

use rates_report::parse;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, short, default_value_t = 8080)]
    port: u16,
    /// Latency before each answer: 0, 100ms, or a range 50ms..150ms.
    #[arg(long, default_value = "0", value_parser = parse::latency)]
    latency: Latency,
    /// Answer 429 with Retry-After past this rate, like 2/s (sliding
    /// one-second window).
    #[arg(long, value_parser = str::parse::<RateLimit>)]
    rate_limit: Option<RateLimit>,
    /// Share of requests answered 500 (0.1 or 10%).
    #[arg(long, value_parser = parse::share, default_value = "0")]
    error_rate: f64,
    /// Share of requests answered 429 with Retry-After: 1.
    #[arg(long, value_parser = parse::share, default_value = "0")]
    too_many_rate: f64,
    /// Share of requests answered 301 Moved Permanently, with `Location`
    /// the same path and query under /moved (which serves the same rates).
    #[arg(long, value_parser = parse::share, default_value = "0")]
    redirect_rate: f64,
    /// Share of requests answered with a body that is not JSON.
    #[arg(long, value_parser = parse::share, default_value = "0")]
    malformed_rate: f64,
    /// Share of requests whose body is cut off halfway.
    #[arg(long, value_parser = parse::share, default_value = "0")]
    truncated_rate: f64,
    /// Share of requests whose connection is closed without an answer.
    #[arg(long, value_parser = parse::share, default_value = "0")]
    drop_rate: f64,
    /// Share of requests that get no answer until --stall passes.
    #[arg(long, value_parser = parse::share, default_value = "0")]
    stall_rate: f64,
    /// How long a stalled request is held before its connection is closed.
    #[arg(long, default_value = "60s", value_parser = parse::duration)]
    stall: Duration,
    /// Seed for latency ranges and fault shares (runs repeat exactly).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Most open connections.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Server runtime threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop after this long (default: run until interrupted).
    #[arg(long, value_parser = parse::duration)]
    duration: Option<Duration>,
    /// Print a line of request counts this often while requests arrive.
    #[arg(long, default_value = "5s", value_parser = parse::duration)]
    stats_every: Duration,
    /// Serve HTTPS with a certificate generated now for 127.0.0.1,
    /// localhost and ::1; its PEM is written to a file whose path is printed
    /// (pass it to `rates fetch --ca-cert`).
    #[arg(long)]
    tls: bool,
    /// Serve HTTPS with this certificate chain (PEM) instead of a generated
    /// one; needs --key.
    #[arg(long, requires = "key", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, requires = "cert", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Where to write the generated certificate (default: rates-serve-PORT.pem
    /// in the temporary directory).
    #[arg(long, value_name = "FILE")]
    cert_out: Option<PathBuf>,
    /// Answer in this API's JSON shape: vatcomply ({"base", "date",
    /// "rates"}) or frankfurter (adds "amount"). Both paths are served either way.
    #[arg(long, default_value = "vatcomply")]
    shape: Shape,
}

/// The server's config from the flags: faults as shares, TLS from
/// --cert/--key or generated with --tls.
fn server_config(a: &ServeArgs) -> Result<ServerConfig> {
    let mut faults = Vec::new();
    let shares = [
        (a.drop_rate, Fault::Drop),
        (a.stall_rate, Fault::Stall),
        (a.truncated_rate, Fault::Truncated),
        (a.malformed_rate, Fault::Malformed),
        (
            a.too_many_rate,
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
        ),
        (a.error_rate, Fault::ServerError),
        (a.redirect_rate, Fault::Redirect { status: 301 }),
    ];
    for (share, fault) in shares {
        if share > 0.0 {
            faults.push(FaultRule::new(fault, When::Share(share)));
        }
    }
    let tls = match (&a.cert, &a.key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading `{}`", path.display()))
            };
            Some(ServerTls::Pem {
                cert_chain: read(cert)?,
                key: read(key)?,
            })
        }
        _ if a.tls => Some(ServerTls::Generated),
        _ => None,
    };
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        addr: SocketAddr::new(a.host, a.port),
        latency: a.latency,
        rate_limit: a.rate_limit,
        faults,
        seed: a.seed,
        stall: a.stall,
        max_connections: a.max_connections,
        threads: a.threads.unwrap_or(defaults.threads),
        tls,
        shape: a.shape,
    };
    Ok(config)
}

/// Prints a line of counts every --stats-every while requests arrive,
/// until --duration is up (or forever without one).
fn report_until_done(a: &ServeArgs, server: &RatesServer) {
    let started = Instant::now();
    let tick = a.stats_every.max(Duration::from_millis(100));
    let mut last = 0;
    loop {
        let remaining = a.duration.map(|d| d.saturating_sub(started.elapsed()));
        if remaining.is_some_and(|r| r.is_zero()) {
            break;
        }
        std::thread::sleep(remaining.map_or(tick, |r| r.min(tick)));
        let stats = server.stats();
        if stats.requests != last {
            last = stats.requests;
            let statuses: Vec<String> = stats
                .by_status
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect();
            say(&format!(
                "{:>7.1}s  {} requests ({}), {} aborted, peak {} in flight",
                started.elapsed().as_secs_f64(),
                stats.requests,
                statuses.join(", "),
                stats.aborted,
                stats.peak_in_flight
            ));
        }
    }
}

pub(crate) fn run(a: &ServeArgs) -> Result<ExitCode> {
    let config = server_config(a)?;
    let server = RatesServer::start(config).context("starting the server")?;
    let addr = server.addr();
    let scheme = server.scheme();
    let endpoint = server.endpoint();
    // Scripts and tests read the address from this first line's end.
    say(&format!("rates server listening on {scheme}://{addr}"));
    if a.shape != Shape::default() {
        say(&format!("  answering in {}'s shape", a.shape));
    }
    let example = format!(
        "{scheme}://{addr}{}",
        a.shape
            .path_template()
            .replace("{base}", "USD")
            .replace("{symbols}", "EUR,PLN")
    );
    match server.certificate_pem() {
        None => {
            say(&format!("  try: curl '{example}'"));
            say(&format!(
                "  fetch from it: rates fetch --endpoint '{endpoint}'"
            ));
        }
        Some(pem) => {
            let path = match (&a.cert, &a.cert_out) {
                (Some(cert), _) => cert.clone(),
                (None, out) => {
                    let path = out.clone().unwrap_or_else(|| {
                        std::env::temp_dir().join(format!("rates-serve-{}.pem", addr.port()))
                    });
                    std::fs::write(&path, pem).with_context(|| {
                        format!("writing the certificate to `{}`", path.display())
                    })?;
                    path
                }
            };
            let path = path.display();
            say(&format!("certificate: {path}"));
            say(&format!("  try: curl --cacert {path} '{example}'"));
            say(&format!(
                "  fetch from it: rates fetch --endpoint '{endpoint}' --ca-cert {path}"
            ));
        }
    }
    report_until_done(a, &server);
    server.stop();
    Ok(ExitCode::SUCCESS)
}

/// Prints a line; a closed or broken stdout (say, a reader that went away)
/// must not stop the server, so write errors are ignored.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
