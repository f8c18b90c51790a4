//! The `process` strategy's worker program for the conformance suite: cargo
//! builds it with the suite and hands its path over as
//! `CARGO_BIN_EXE_rates-testkit-worker`.

fn main() -> std::process::ExitCode {
    rates_process::worker_main()
}
