//! The worker program of the `process` strategy, built for the benches.

fn main() -> std::process::ExitCode {
    rates_process::worker_main()
}
