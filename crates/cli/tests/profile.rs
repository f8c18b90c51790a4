//! `rates profile`, end to end: a real run of a real strategy under the
//! real perf, or, on a machine without perf, the error naming its package.

use std::process::Command;

mod common;
use common::{rates, tempdir};

fn perf_here() -> bool {
    Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_profile_folder_has_the_flamegraph_the_syscalls_and_the_summary() {
    let dir = tempdir("profile-pool");
    let out = dir.join("pool");
    let (code, stdout, stderr) = rates(&[
        "profile",
        "--strategy",
        "pool",
        "--scenario",
        "fanout",
        // Fewer samples than the default: perf script's unwinding of a
        // debug build's stacks is what takes the time.
        "--frequency",
        "999",
        "--out",
        out.to_str().unwrap(),
    ]);
    if !perf_here() {
        assert_ne!(code, 0);
        assert!(stderr.contains("apt-get install linux-perf"), "{stderr}");
        eprintln!("perf is not installed here: checked the error that names it");
        return;
    }
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("pool on fanout: 500 requests"),
        "{stdout}"
    );
    assert!(stdout.contains("in the kernel"), "{stdout}");
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).unwrap();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(&svg, options).expect("flamegraph.svg is SVG");
    let frames: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        frames.iter().any(|t| t.contains("rates_pool")),
        "the pool's own frames are in the flamegraph"
    );
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("profile.json")).unwrap()).unwrap();
    assert_eq!(profile["requests"], 500);
    assert!(profile["sampled_ns"].as_u64().unwrap() > 0);
    let shares: f64 = profile["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[1].as_f64().unwrap())
        .sum();
    assert!(
        (shares - 1.0).abs() < 1e-6,
        "groups share all samples: {shares}"
    );
    if rates_measure::syscall_tracepoint().is_ok() {
        // A blocking client: each request is at least one send and one
        // receive, by name.
        let by_name = profile["syscalls_by_name"].as_array().unwrap();
        let per = |name: &str| {
            by_name
                .iter()
                .find(|s| s[0] == name)
                .and_then(|s| s[1].as_f64())
                .unwrap_or(0.0)
        };
        assert!(per("sendto") + per("write") >= 1.0, "{by_name:?}");
        assert!(per("recvfrom") + per("read") >= 1.0, "{by_name:?}");
        let csv = std::fs::read_to_string(out.join("syscalls.csv")).unwrap();
        assert!(csv.starts_with("syscall,count,per_request\n"), "{csv}");
    } else {
        assert!(stdout.contains("n/a: tracefs is not mounted"), "{stdout}");
    }
}

#[test]
fn a_profile_of_an_unknown_strategy_says_which() {
    let dir = tempdir("profile-unknown");
    let (code, _, stderr) = rates(&[
        "profile",
        "--strategy",
        "nope",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    if perf_here() {
        assert!(stderr.contains("nope"), "{stderr}");
    }
}
