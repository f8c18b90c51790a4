//! The worker program of the `process` strategy: JSON lines on stdin and
//! stdout (see `rates_process::worker_main`). Started by the strategy, not by hand.

fn main() -> std::process::ExitCode {
    rates_process::worker_main()
}
