//! The `rates` binary, run as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn rates() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rates"))
}

fn output(args: &[&str]) -> (i32, String, String) {
    let out = rates().args(args).output().expect("run rates");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fetch_prints_the_classic_matrix() {
    let (code, stdout, _) = output(&["fetch", "--latency", "5ms"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with(rates_testkit::CLASSIC_MATRIX),
        "{stdout}"
    );
    assert!(stdout.contains("5 ok, 0 failed, 5 requests"), "{stdout}");
    assert!(stdout.contains("time elapsed: "), "{stdout}");
}

#[test]
fn invalid_base_is_named_and_nothing_runs() {
    let (code, stdout, stderr) = output(&["fetch", "--bases", "USD,U5D"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid currency code `U5D`"), "{stderr}");
    assert!(!stderr.contains("fetching"), "nothing may start: {stderr}");
    assert!(stdout.is_empty());
}

#[test]
fn unknown_strategy_lists_the_known_ones() {
    let (code, _, stderr) = output(&["fetch", "--strategy", "fibers"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown strategy `fibers`") && stderr.contains("sync"),
        "{stderr}"
    );
}

#[test]
fn failed_bases_are_listed_and_set_the_exit_code() {
    // Nothing listens on the endpoint: every base fails with a connection error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}/rates?base={{base}}");
    let (code, stdout, _) = output(&[
        "fetch",
        "--endpoint",
        &endpoint,
        "--bases",
        "USD,EUR",
        "--retries",
        "0",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("2 of 2 bases failed"), "{stdout}");
    assert!(
        stdout.contains("USD: connection error after 1 attempt"),
        "{stdout}"
    );
}

#[test]
fn json_output_is_a_report() {
    let (code, stdout, _) = output(&["fetch", "--latency", "0", "--bases", "usd,pln", "--json"]);
    assert_eq!(code, 0);
    let report: rates_core::Report = serde_json::from_str(&stdout).expect("a JSON report");
    let bases: Vec<&str> = report.outcomes.iter().map(|o| o.base.as_str()).collect();
    assert_eq!(bases, ["USD", "PLN"]);
}

#[test]
fn strategies_lists_the_registry() {
    let (code, stdout, _) = output(&["strategies"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, rates_registry::names());
}

#[test]
fn compare_prints_a_row_per_strategy() {
    let (code, stdout, stderr) = output(&[
        "compare",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--strategies",
        "sync,tokio",
    ]);
    assert_eq!(code, 0, "{stderr}");
    for table in ["Time", "Cost (each strategy's own process tree)", "Summary"] {
        assert!(stdout.lines().any(|l| l == table), "{table}: {stdout}");
    }
    // Each table's title row matches its columns: the sync row has one
    // figure per title.
    let header = stdout
        .lines()
        .find(|l| l.starts_with("strategy") && l.contains("median"))
        .expect("the time table's header");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("sync "))
        .expect("a sync row");
    let titles = header.split("  ").filter(|t| !t.trim().is_empty()).count();
    let cells = row.split("  ").filter(|t| !t.trim().is_empty()).count();
    assert_eq!(titles, cells, "{header}\n{row}");
    assert!(
        row.contains("1.0"),
        "sync runs at its ideal on classic: {row}"
    );
    let (code, _, stderr) = output(&["compare", "--scenario", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown scenario `nope`"), "{stderr}");
}

#[test]
fn serve_survives_its_stdout_closing() {
    let mut child = rates()
        .args([
            "serve",
            "--port",
            "0",
            "--duration",
            "20s",
            "--stats-every",
            "100ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rates serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("an address line");
    // The reader is gone now. While requests arrive the server prints a
    // stats line every 100 ms, each into a broken pipe; it must keep serving.
    let addr = first.rsplit("http://").next().unwrap().trim().to_owned();
    let url = format!("http://{addr}/rates?base=USD");
    let mut answered = 0;
    for _ in 0..8 {
        if ureq::get(&url).call().is_ok_and(|r| r.status() == 200) {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "rates serve died when its stdout closed");
    assert_eq!(answered, 8);
}

#[test]
fn serve_answers_and_rate_limits() {
    let mut child = rates()
        .args([
            "serve",
            "--port",
            "0",
            "--rate-limit",
            "2/s",
            "--duration",
            "20s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rates serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("rates serve printed its address");
    let addr = first
        .rsplit("http://")
        .next()
        .expect("an address")
        .trim()
        .to_owned();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = format!("http://{addr}/rates?base=USD");
    let statuses: Vec<(u16, Option<String>)> = (0..3)
        .map(|_| {
            let r = agent.get(&url).call().expect("an answer");
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (r.status().as_u16(), retry)
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    assert_eq!(statuses[2].0, 429, "{statuses:?}");
    assert_eq!(statuses[2].1.as_deref(), Some("1"));
}
