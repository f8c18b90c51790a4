//! A busy machine is said in every output: a comparison run while one CPU
//! burner per CPU runs beside it. In a test binary of its own, so that its
//! load does not overlap the other tests' measurements (cargo runs test
//! binaries one after another).

use std::process::Command;

use serde_json::Value;

mod common;
use common::{rates, tempdir};

/// One CPU burner per CPU of the machine, each ending by itself within two
/// minutes (`timeout`), all stopped and reaped when this is dropped.
struct Load(Vec<std::process::Child>);

impl Load {
    fn start() -> Self {
        let cpus = std::fs::read_to_string("/proc/stat")
            .map(|s| {
                s.lines()
                    .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
                    .count()
            })
            .unwrap_or(2)
            .max(1);
        Self(
            (0..cpus)
                .map(|_| {
                    Command::new("timeout")
                        .args(["120", "yes"])
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .expect("coreutils' timeout and yes make the load")
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // SIGTERM, which `timeout` passes on to `yes` before it exits
        // (SIGKILL would end `timeout` alone and leave `yes` running).
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_busy_machine_is_said_in_every_output() {
    let dir = tempdir("busy");
    let (json, md) = (dir.join("classic.json"), dir.join("classic.md"));
    let load = Load::start();
    let (code, stdout, stderr) = rates(&[
        "compare",
        "--scenario",
        "classic",
        "--strategies",
        "sync",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--export-json",
        json.to_str().unwrap(),
        "--export-markdown",
        md.to_str().unwrap(),
    ]);
    drop(load);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("WARNING: the machine was busy: other work than this measurement"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: classic: the machine was busy"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("> **Warning**: the machine was busy"), "{md}");
    let export: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let busy = &export["machine"]["busy"];
    assert!(
        busy["other_share"].as_f64().is_some_and(|s| s > 0.1),
        "{busy}"
    );
    assert!(
        busy["warning"]
            .as_str()
            .is_some_and(|w| w.contains("--against")),
        "{busy}"
    );
}
