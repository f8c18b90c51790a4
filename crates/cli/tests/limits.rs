//! Sizes past what the OS allows end with a report or a clear error, never
//! a crash: `rates fetch` against `rates serve` in a process of its own, so
//! each side has its own thread and open-files budget.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn rates() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rates"))
}

/// `rates serve` on an ephemeral port, killed and reaped when dropped.
struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    fn start(latency: &str) -> Self {
        let mut child = rates()
            .args(["serve", "--port", "0", "--latency", latency])
            .args(["--duration", "120s", "--stats-every", "600s"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start rates serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("rates serve printed its address");
        // Keep draining what the server prints, as a terminal would.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = first
            .rsplit("http://")
            .next()
            .map(str::trim)
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Self {
            child,
            endpoint: format!("http://{addr}/rates?base={{base}}&symbols={{symbols}}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command) -> (i32, String, String) {
    let out = command.output().expect("run rates");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn threads_past_its_thread_limit_runs_in_waves_and_reports_every_base() {
    // The machine's own limit (about 14,000 threads with the default
    // vm.max_map_count) takes minutes of thread starts to reach in a debug
    // build on 2 cores; --max-threads lowers it through the same path.
    let server = Server::start("5ms");
    let (code, stdout, stderr) = run(rates().args([
        "fetch",
        "--strategy",
        "threads",
        "--bases",
        "1200",
        "--max-threads",
        "250",
        "--endpoint",
        &server.endpoint,
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1200 ok, 0 failed"), "{stdout}");
    let waves = "runs its 1200 bases in 5 waves of at most 250 threads";
    assert!(stderr.contains(waves), "said before the run: {stderr}");
    assert!(stdout.contains(waves), "and in the report: {stdout}");
    assert!(stderr.contains("at most 250 in flight"), "{stderr}");
}

#[test]
fn a_low_open_files_limit_caps_the_connections_with_the_reason() {
    let server = Server::start("0");
    // A hard limit of 256 descriptors cannot hold 1,000 connections: the
    // client caps them, says why before sending, and still fetches all.
    let (code, stdout, stderr) = run(Command::new("sh").args([
        "-c",
        "ulimit -n 256 && exec \"$0\" fetch --strategy tokio --bases 2000 --concurrency 1000 \
         --endpoint \"$1\"",
        env!("CARGO_BIN_EXE_rates"),
        &server.endpoint,
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("2000 ok, 0 failed"), "{stdout}");
    assert!(
        stderr.contains("open-files limit (ulimit -n) is 256"),
        "{stderr}"
    );
    assert!(
        stdout.contains("open-files limit"),
        "the report's note: {stdout}"
    );
}

#[test]
fn absurd_base_counts_are_refused_before_anything_starts() {
    let (code, stdout, stderr) = run(rates().args(["fetch", "--bases", "99999999"]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("--bases 99999999"), "{stderr}");
    assert!(stderr.contains("at most --bases 1000000"), "{stderr}");
    assert!(!stderr.contains("fetching"), "nothing ran: {stderr}");
}

#[test]
fn base_counts_past_the_distinct_codes_are_announced() {
    let server = Server::start("0");
    let (code, stdout, stderr) = run(rates().args([
        "fetch",
        "--strategy",
        "tokio",
        "--bases",
        "17600",
        "--concurrency",
        "200",
        "--endpoint",
        &server.endpoint,
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("codes repeat after 17,576"), "{stderr}");
    assert!(stdout.contains("17600 ok, 0 failed"), "{stdout}");
}
