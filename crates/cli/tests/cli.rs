//! The `rates` binary, run as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn rates() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rates"))
}

fn output(args: &[&str]) -> (i32, String, String) {
    output_with(args, &[])
}

/// `output` with these environment variables set.
fn output_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = rates()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run rates");
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
    // Bases that failed the same way share one line.
    assert!(
        stdout.contains("USD, EUR: connection error after 1 attempt"),
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
    // Three requests at once, on three threads: they arrive within
    // milliseconds of each other, far inside the server's one-second
    // window, so exactly one of them is over the limit of 2/s (sent one
    // after another, a loaded machine could spread them over a second).
    let barrier = std::sync::Barrier::new(3);
    let mut statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (agent, url, barrier) = (agent.clone(), url.clone(), &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let r = agent.get(&url).call().expect("an answer");
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    (r.status().as_u16(), retry)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a request thread"))
            .collect()
    });
    let _ = child.kill();
    let _ = child.wait();
    statuses.sort();
    assert_eq!(statuses[0].0, 200, "{statuses:?}");
    assert_eq!(statuses[1].0, 200, "{statuses:?}");
    assert_eq!(statuses[2].0, 429, "{statuses:?}");
    assert_eq!(statuses[2].1.as_deref(), Some("1"));
}

/// Starts `rates serve` with `args` on a free port and returns the child and
/// the lines it printed before its first request (read for up to 10 s).
fn serve(args: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child = rates()
        .args(["serve", "--port", "0", "--duration", "60s"])
        .args(args)
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
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        let done = line.contains("fetch from it:");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

/// The value after `prefix` on the line that has it.
fn after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no `{prefix}` in {lines:?}"))
}

#[test]
fn serve_tls_prints_its_certificate_and_fetch_trusts_it_with_ca_cert() {
    let dir = std::env::temp_dir().join(format!("rates-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_out = dir.join("cert.pem");
    let (mut child, lines) = serve(&["--tls", "--cert-out", cert_out.to_str().unwrap()]);
    let addr = after(&lines, "listening on https://").to_owned();
    let cert = after(&lines, "certificate:").to_owned();
    assert_eq!(cert, cert_out.display().to_string(), "{lines:?}");
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
    let endpoint = format!("https://{addr}/rates?base={{base}}&symbols={{symbols}}");

    let (code, stdout, stderr) = output(&[
        "fetch",
        "--strategy",
        "tokio",
        "--endpoint",
        &endpoint,
        "--ca-cert",
        &cert,
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with(rates_testkit::CLASSIC_MATRIX),
        "{stdout}"
    );

    let (code, stdout, _) = output(&["fetch", "--endpoint", &endpoint, "--retries", "3"]);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("5 of 5 bases failed"), "{stdout}");
    assert!(
        stdout.contains("USD, EUR, PLN, NOK, CZK: tls error after 1 attempt")
            && stdout.contains("--ca-cert"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("not trusted").count(),
        1,
        "said once: {stdout}"
    );
}

#[test]
fn fetch_with_an_unreadable_ca_cert_names_the_file() {
    let (code, _, stderr) = output(&[
        "fetch",
        "--endpoint",
        "https://127.0.0.1:1/rates?base={base}",
        "--ca-cert",
        "/nonexistent/ca.pem",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
}

#[test]
fn api_preset_keeps_its_shape_and_politeness_with_a_local_endpoint() {
    let (mut child, lines) = serve(&["--shape", "frankfurter"]);
    let addr = after(&lines, "listening on http://").to_owned();
    let (code, stdout, stderr) = output(&[
        "fetch",
        "--api",
        "frankfurter",
        "--endpoint",
        &format!("http://{addr}"),
        "--strategy",
        "threads",
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with(rates_testkit::CLASSIC_MATRIX),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("from http://{addr}/v1/latest?base={{base}}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("concurrency 2") && stderr.contains("rate limit 5/s"),
        "{stderr}"
    );
}

/// A service that moved answers 301 with its new location: the preset
/// follows it (same origin), and the rates are the same.
#[test]
fn api_preset_follows_a_service_that_moved() {
    let (mut child, lines) = serve(&["--shape", "frankfurter", "--redirect-rate", "40%"]);
    let addr = after(&lines, "listening on http://").to_owned();
    let (code, stdout, stderr) = output(&[
        "fetch",
        "--api",
        "frankfurter",
        "--endpoint",
        &format!("http://{addr}"),
        "--json",
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let export: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let outcomes = export["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 5, "{stdout}");
    let attempts: u64 = outcomes
        .iter()
        .map(|o| o["attempts"].as_u64().unwrap_or(0))
        .sum();
    // With the server's fixed seed, some of the five bases are moved once
    // or more; each hop is an attempt.
    assert!(attempts > 5, "no redirect was followed: {stdout}");
    assert!(outcomes.iter().all(|o| o["rates"].is_object()), "{stdout}");
}

/// Each async strategy sizes its executor by its runtime's own setting, and
/// a value that is not a number of threads is an error naming it, before
/// anything is fetched (tokio itself would panic on it).
#[test]
fn process_forks_its_workers_from_one_server_unless_told_not_to() {
    let peak_processes = |value: &str| -> (u64, u64) {
        let args = ["compare", "--runs", "1", "--warmup", "0", "--json"];
        let (code, stdout, stderr) = output_with(
            &[&args[..], &["--strategies", "process"]].concat(),
            &[("RATES_PROCESS_FORK_SERVER", value)],
        );
        assert_eq!(code, 0, "RATES_PROCESS_FORK_SERVER={value}: {stderr}");
        let export: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON export");
        let row = &export["results"][0];
        let failed = row["failed"].as_u64().unwrap_or(u64::MAX);
        assert_eq!(failed, 0, "{row}");
        (
            row["peak_processes"].as_u64().expect("peak_processes"),
            row["ok"].as_u64().expect("ok"),
        )
    };
    let (forked, ok_forked) = peak_processes("1");
    let (run, ok_run) = peak_processes("0");
    assert_eq!(ok_forked, ok_run);
    assert!(run > 1, "process runs workers: {run} processes");
    // The same workers either way, and the fork server beside them.
    assert_eq!(
        forked,
        run + 1,
        "with a fork server {forked}, without {run}"
    );
    let (code, _, stderr) = output_with(
        &["fetch", "--strategy", "process", "--latency", "0ms"],
        &[("RATES_PROCESS_FORK_SERVER", "yes")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("RATES_PROCESS_FORK_SERVER=\"yes\" is neither 0"),
        "{stderr}"
    );
}

#[test]
fn async_executor_threads_follow_their_runtime_s_setting() {
    let peak_threads = |strategy: &str, var: &str, value: &str| -> u64 {
        let args = ["compare", "--runs", "1", "--warmup", "0", "--json"];
        let (code, stdout, _) = output_with(
            &[&args[..], &["--strategies", strategy]].concat(),
            &[(var, value)],
        );
        assert_eq!(code, 0, "{strategy} {var}={value}: {stdout}");
        let export: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON export");
        export["results"][0]["peak_threads"]
            .as_u64()
            .unwrap_or_else(|| panic!("no peak_threads for {strategy}: {stdout}"))
    };
    for (strategy, var) in [
        ("tokio", "TOKIO_WORKER_THREADS"),
        ("smol", "SMOL_THREADS"),
        ("async-std", "ASYNC_STD_THREAD_COUNT"),
    ] {
        let one = peak_threads(strategy, var, "1");
        let three = peak_threads(strategy, var, "3");
        assert_eq!(
            three,
            one + 2,
            "{strategy}: {var}=1 gave {one} threads, =3 gave {three}"
        );
    }
    for (strategy, var) in [("tokio", "TOKIO_WORKER_THREADS"), ("smol", "SMOL_THREADS")] {
        for bad in ["0", "two"] {
            let (code, _, stderr) = output_with(
                &["fetch", "--strategy", strategy, "--latency", "0ms"],
                &[(var, bad)],
            );
            assert_eq!(code, 2, "{strategy} {var}={bad}: {stderr}");
            assert!(
                stderr.contains(&format!("{var}={bad} is not a number of")),
                "{strategy} {var}={bad}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn json_with_resources_carries_them() {
    let (code, stdout, stderr) = output(&[
        "fetch",
        "--latency",
        "0",
        "--bases",
        "usd,pln",
        "--json",
        "--resources",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let r = &doc["resources"];
    assert!(r["cpu_user_s"].as_f64().is_some_and(|s| s >= 0.0), "{doc}");
    assert!(r["cpu_sys_s"].as_f64().is_some(), "{doc}");
    assert!(r["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0), "{doc}");
    assert_eq!(
        r["scope"], "this process, embedded server included",
        "{doc}"
    );
    // Without --resources the document has no such field.
    let (_, stdout, _) = output(&["fetch", "--latency", "0", "--bases", "usd", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(doc.get("resources").is_none(), "{doc}");
}
