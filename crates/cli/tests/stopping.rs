//! Stopping the `rates` binary as a user does: a deadline, Ctrl-C (SIGINT
//! to the process group, as a terminal sends it), SIGTERM, and SIGKILL; and
//! what is left running afterwards (nothing).

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RATES: &str = env!("CARGO_BIN_EXE_rates");

/// An environment variable every process of one test inherits, so that
/// what a test left running can be found by it.
const MARKER: &str = "RATES_STOPPING_TEST";

fn rates(marker: &str) -> Command {
    let mut cmd = Command::new(RATES);
    cmd.env(MARKER, marker);
    cmd
}

/// Processes still alive that carry `marker` in their environment.
fn alive_with(marker: &str) -> Vec<u32> {
    let needle = format!("{MARKER}={marker}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .filter(|pid| {
            // A zombie is dead; only its parent has yet to reap it.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
        })
        .collect()
}

/// How long a test waits for what a stopped `rates` left to be gone. A run
/// returns only once every child is reaped, so a right one leaves nothing
/// the moment it exits; a leak stays forever. The wait only absorbs a
/// loaded machine's delay in reaping (a Ctrl-C'd fetch with 32 workers,
/// beside busy loops on both cores and other tests).
const LEFT_WAIT: Duration = Duration::from_secs(10);

/// Waits (at most `within`) until nothing carrying `marker` is alive.
fn none_left(marker: &str, within: Duration) -> Result<(), Vec<u32>> {
    let until = Instant::now() + within;
    loop {
        let alive = alive_with(marker);
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(alive);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal_group(child: &Child, signal: i32) {
    let pgid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a negative pid signals a process group.
    assert_eq!(unsafe { libc::kill(-pgid, signal) }, 0);
}

fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) of a child of this process, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Starts `cmd` in a process group of its own (as a shell runs a job),
/// and waits until it says on stderr that it is `ready` (a line
/// containing it), at most 30 s.
fn start(mut cmd: Command, ready: &str) -> (Child, std::thread::JoinHandle<String>) {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run rates");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = ready.to_owned();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut told = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !told && line.contains(&ready) {
                let _ = tx.send(());
                told = true;
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("rates did not start in 30 s");
    (child, reader)
}

fn finish(mut child: Child, reader: std::thread::JoinHandle<String>) -> (i32, String, String) {
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    (status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn a_deadline_cancels_what_is_not_done_in_every_strategy() {
    for strategy in rates_registry::names() {
        let marker = format!("deadline-{strategy}");
        let started = Instant::now();
        let out = rates(&marker)
            .args([
                "fetch",
                "--strategy",
                strategy,
                "--bases",
                "2000",
                "--latency",
                "300s",
                "--timeout",
                "400s",
                "--deadline",
                "300ms",
            ])
            .output()
            .unwrap();
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{strategy}: {stdout}{stderr}");
        // The server holds every request 300 s (under a 400 s request
        // timeout): a run that ignored its deadline would take 300 s or
        // more, one that keeps it under 3 s with start-up.
        assert!(took < Duration::from_secs(30), "{strategy}: took {took:?}");
        assert!(
            stdout.contains("cancelled: 2000 bases (the run's deadline passed"),
            "{strategy}: {stdout}"
        );
        assert!(stdout.contains("0 ok, 0 failed"), "{strategy}: {stdout}");
        if let Err(left) = none_left(&marker, LEFT_WAIT) {
            panic!("{strategy}: processes left running: {left:?}");
        }
    }
}

#[test]
fn ctrl_c_on_fetch_prints_what_finished_and_exits_130_leaving_nothing() {
    let marker = "ctrl-c-fetch";
    let mut cmd = rates(marker);
    cmd.args([
        "fetch",
        "--strategy",
        "process",
        "--bases",
        "3000",
        "-c",
        "32",
        "--latency",
        "1s",
    ]);
    let (child, reader) = start(cmd, "fetching 3000 bases");
    // Two waves of 32 answered, the third in flight.
    std::thread::sleep(Duration::from_millis(2_500));
    signal_group(&child, libc::SIGINT);
    let (code, stdout, stderr) = finish(child, reader);
    assert_eq!(code, 130, "{stdout}{stderr}");
    let cancelled = stdout
        .lines()
        .find_map(|l| l.strip_prefix("cancelled: "))
        .unwrap_or_else(|| panic!("a cancelled line: {stdout}"));
    assert!(cancelled.contains("the run was interrupted"), "{cancelled}");
    let n: usize = cancelled.split(' ').next().unwrap().parse().unwrap();
    assert!(
        (1..3000).contains(&n),
        "some fetched, the rest cancelled: {stdout}"
    );
    assert!(
        stdout.contains(&format!("{} ok, 0 failed", 3000 - n)),
        "{stdout}"
    );
    assert!(
        !stderr.contains("Broken pipe"),
        "no worker complains: {stderr}"
    );
    if let Err(left) = none_left(marker, LEFT_WAIT) {
        panic!("processes left running: {left:?}");
    }
}

/// The first Ctrl-C stops the run, which then waits for what cannot be
/// interrupted (here a connect that hangs, bounded by its 60 s timeout);
/// a second exits at once, with the first one's code.
#[test]
fn a_second_ctrl_c_exits_at_once() {
    use std::os::fd::AsRawFd as _;
    // A listener whose accept queue is full: the kernel drops the next
    // connection's SYN, so connecting to it hangs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a socket this test owns, to shrink its backlog.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let _queued: Vec<_> = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    let marker = "second-ctrl-c";
    let mut cmd = rates(marker);
    cmd.args([
        "fetch",
        "--strategy",
        "sync",
        "--endpoint",
        &format!("http://{addr}/rates?base={{base}}"),
        "--connect-timeout",
        "60s",
        "--timeout",
        "90s",
    ]);
    let (mut child, reader) = start(cmd, "fetching 5 bases");
    std::thread::sleep(Duration::from_millis(500));
    signal_group(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(500));
    let second = Instant::now();
    signal_group(&child, libc::SIGINT);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // A stopped run that waits out its 60 s connect timeout would take
        // a minute; the second Ctrl-C ends it in milliseconds.
        assert!(
            second.elapsed() < Duration::from_secs(10),
            "still running 10 s after the second Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("again to quit at once"), "{stderr}");
}

#[test]
fn sigterm_on_fetch_exits_143_and_a_stream_has_every_base_once() {
    let marker = "sigterm-fetch";
    let mut cmd = rates(marker);
    cmd.args([
        "fetch",
        "--strategy",
        "tokio",
        "--bases",
        "200",
        "-c",
        "20",
        "--latency",
        "500ms",
        "--stream",
        "--json",
    ]);
    let (child, reader) = start(cmd, "fetching 200 bases");
    std::thread::sleep(Duration::from_millis(1_200));
    signal(&child, libc::SIGTERM);
    let (code, stdout, stderr) = finish(child, reader);
    assert_eq!(code, 143, "{stdout}{stderr}");
    let mut indices: Vec<u64> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["index"].as_u64().unwrap()
        })
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..200).collect::<Vec<_>>(), "each base once");
    assert!(stderr.contains("cancelled: "), "{stderr}");
}

#[test]
fn a_killed_fetch_leaves_no_worker_after_a_second() {
    let marker = "sigkill-fetch";
    let mut cmd = rates(marker);
    cmd.args([
        "fetch",
        "--strategy",
        "process",
        "--bases",
        "500",
        "-c",
        "16",
        "--latency",
        "3s",
    ]);
    let (child, reader) = start(cmd, "fetching 500 bases");
    // The workers are started and waiting on the slow server.
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(alive_with(marker).len() > 1, "workers are running");
    signal(&child, libc::SIGKILL);
    let (code, _, _) = finish(child, reader);
    assert_eq!(code, -1, "killed");
    if let Err(left) = none_left(marker, Duration::from_millis(1_500)) {
        panic!("workers still running 1.5 s after their parent was killed: {left:?}");
    }
}

#[test]
fn ctrl_c_on_compare_stops_its_child_and_reports_what_completed() {
    let marker = "ctrl-c-compare";
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stopping-compare");
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = rates(marker);
    cmd.args([
        "compare",
        "--scenario",
        "fanout",
        "--strategies",
        "process,tokio",
        "--runs",
        "50",
        "--out",
    ])
    .arg(&dir);
    let (child, reader) = start(cmd, "run 2/50");
    signal_group(&child, libc::SIGINT);
    let (code, stdout, stderr) = finish(child, reader);
    assert_eq!(code, 130, "{stdout}{stderr}");
    assert!(stdout.contains("fanout: 500 bases"), "the report: {stdout}");
    assert!(stderr.contains("interrupted: 1 of 1 scenario"), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["incomplete"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{manifest}"
    );
    if let Err(left) = none_left(marker, LEFT_WAIT) {
        panic!("left running: {left:?}");
    }
}

#[test]
fn an_interrupted_compare_that_completed_nothing_leaves_no_folder() {
    let marker = "ctrl-c-compare-empty";
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stopping-empty");
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = rates(marker);
    cmd.args([
        "compare",
        "--scenario",
        "cancel",
        "--strategies",
        "sync",
        "--out",
    ])
    .arg(&dir);
    let (child, reader) = start(cmd, "scenario cancel");
    std::thread::sleep(Duration::from_millis(300));
    signal_group(&child, libc::SIGINT);
    let (code, stdout, stderr) = finish(child, reader);
    assert_eq!(code, 130, "{stdout}{stderr}");
    assert!(!dir.exists(), "an empty --out folder is removed: {stderr}");
    if let Err(left) = none_left(marker, LEFT_WAIT) {
        panic!("left running: {left:?}");
    }
}

#[test]
fn nothing_to_fetch_and_unusable_endpoints_are_refused_up_front() {
    for bases in ["", "0", " "] {
        let out = Command::new(RATES)
            .args(["fetch", "--bases", bases])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--bases {bases:?}: {stderr}");
        assert!(stderr.contains("--bases"), "{stderr}");
    }
    for endpoint in [
        "http://127.0.0.1:0/rates?base={base}",
        "http://127.0.0.1:8080/rates?base={base} &x=1",
    ] {
        let out = Command::new(RATES)
            .args(["fetch", "--endpoint", endpoint])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{endpoint}: {stderr}");
        assert!(stderr.contains("invalid endpoint"), "{stderr}");
        assert!(!stderr.contains("fetching"), "nothing starts: {stderr}");
    }
}

#[test]
fn a_request_timeout_shorter_than_the_connect_timeout_is_named_as_such() {
    let out = Command::new(RATES)
        .args([
            "fetch",
            "--timeout",
            "1ns",
            "--retries",
            "0",
            "--bases",
            "USD",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("request timeout"), "{stdout}");
    assert!(!stdout.contains("connect timeout"), "{stdout}");
}

#[test]
fn output_paths_are_checked_before_anything_is_measured() {
    let started = Instant::now();
    let out = Command::new(RATES)
        .args(["compare", "--export-json", "/missing/x.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/missing") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("scenario classic"),
        "nothing measured: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stopping-a-file");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(RATES)
        .args(["compare", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a file, not a folder"), "{stderr}");
}

#[test]
fn a_compare_whose_bases_the_deadline_cancelled_exits_0() {
    // 100 ms a request, a 30 ms deadline: every base is cancelled, which
    // is what the run was asked to do, not a failure.
    let out = Command::new(RATES)
        .args([
            "compare",
            "--scenario",
            "classic",
            "--strategies",
            "sync,tokio",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--deadline",
            "30ms",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for r in doc["results"].as_array().unwrap() {
        assert_eq!(r["cancelled"], 5, "{r}");
        assert_eq!(r["failed"], 5, "{r}");
        assert!(r["error"].is_null(), "{r}");
    }
}
