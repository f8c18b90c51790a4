//! What the CLI's test binaries share: running the `rates` binary, and a
//! fresh folder of their own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the `rates` binary with `args`: (exit code, stdout, stderr).
pub(crate) fn rates(args: &[&str]) -> (i32, String, String) {
    rates_with(args, &[])
}

/// [`rates`] with these environment variables set.
pub(crate) fn rates_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rates"))
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

/// An empty folder `NAME` under the test target's scratch space.
pub(crate) fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
