//! Fetches 200 bases with the packaged rates-tokio from the packaged
//! rates-server, and checks what a user relies on: one outcome per base, in
//! input order, every one a success, each base sent once, and no more in
//! flight than asked. Exits 1 with the reason otherwise.

use std::process::ExitCode;

use rates_core::{Config, Strategy};
use rates_server::RatesServer;
use rates_tokio::Tokio;

fn run() -> Result<(), String> {
    let server = RatesServer::start(Default::default()).map_err(|e| e.to_string())?;
    let config = Config::new(&server.endpoint())
        .map_err(|e| e.to_string())?
        .with_concurrency(32);
    let bases = rates_core::generated_codes(200);
    let report = Tokio::new()
        .fetch(&bases, &config)
        .map_err(|e| e.to_string())?;
    let got: Vec<_> = report.outcomes.iter().map(|o| o.base).collect();
    if got != bases {
        return Err("the outcomes are not the bases in input order".into());
    }
    if !report.all_succeeded() {
        let first = report.failures().next().map(|o| o.to_string());
        return Err(format!("a base failed: {first:?}"));
    }
    let stats = server.stats();
    if stats.requests != 200 {
        return Err(format!(
            "the server saw {} requests, not 200",
            stats.requests
        ));
    }
    if stats.peak_in_flight > 32 {
        return Err(format!(
            "{} requests were in flight at once, over 32",
            stats.peak_in_flight
        ));
    }
    println!(
        "consumer: 200 of 200 bases fetched in order through the packaged rates-tokio, \
         at most {} in flight",
        stats.peak_in_flight
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("consumer: {why}");
            ExitCode::FAILURE
        }
    }
}
