//! Finding the worker program.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use rates_core::{Config, Error, ErrorKind, WorkerCommand};

/// The environment variable naming the worker program: a path, optionally
/// followed by whitespace-separated arguments (`/usr/bin/rates worker`).
pub const WORKER_ENV: &str = "RATES_WORKER";

/// The worker binary looked for beside the running executable.
pub const WORKER_BIN: &str = "rates-worker";

/// Copies of the worker that cargo builds for the workspace's test and
/// bench crates (a package's binaries are only built for its own tests and
/// benches), looked for after [`WORKER_BIN`].
const OTHER_BINS: [&str; 2] = ["rates-testkit-worker", "rates-bench-worker"];

/// Where a worker command came from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Config,
    Env,
    BesideExe,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Config => "from Config.worker",
            Self::Env => "from the RATES_WORKER environment variable",
            Self::BesideExe => "found beside the running executable",
        })
    }
}

/// The worker program the process strategy will run for `config`, looked up
/// in this order:
///
/// 1. [`Config::worker`], when set;
/// 2. the [`RATES_WORKER`](WORKER_ENV) environment variable: a program path,
///    optionally followed by whitespace-separated arguments (a path that is
///    an existing file is taken whole, spaces and all);
/// 3. a [`rates-worker`](WORKER_BIN) binary in the running executable's
///    directory or the directory above it (so test and bench binaries in
///    `target/*/deps/` find the one cargo built in `target/*/`); failing
///    that, the copies cargo builds for the workspace's test and bench
///    crates, `rates-testkit-worker` and `rates-bench-worker`, there.
///
/// # Errors
/// [`ErrorKind::Spawn`] naming every place looked at and how to fix it,
/// or [`ErrorKind::InvalidInput`] for an empty `RATES_WORKER`.
pub fn locate_worker(config: &Config) -> Result<WorkerCommand, Error> {
    locate(
        config.worker.as_ref(),
        std::env::var_os(WORKER_ENV),
        std::env::current_exe().ok(),
    )
    .map(|(command, _)| command)
}

/// A worker command that runs the current executable with `args` (such as
/// a hidden `worker` subcommand that calls
/// [`worker_main`](crate::worker_main)). Put it in [`Config::worker`].
///
/// # Errors
/// [`ErrorKind::Spawn`] when the path of the running executable is unknown.
pub fn worker_in_current_exe(args: &[&str]) -> Result<WorkerCommand, Error> {
    let program = std::env::current_exe().map_err(|e| {
        Error::new(
            ErrorKind::Spawn,
            format!(
                "cannot use this program as its own worker: its path is unknown ({e}); \
                 set {WORKER_ENV} to a worker program instead"
            ),
        )
    })?;
    Ok(WorkerCommand {
        program,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    })
}

pub(crate) fn locate(
    configured: Option<&WorkerCommand>,
    env: Option<OsString>,
    exe: Option<PathBuf>,
) -> Result<(WorkerCommand, Source), Error> {
    if let Some(command) = configured {
        return Ok((command.clone(), Source::Config));
    }
    if let Some(value) = env {
        return from_env(value).map(|c| (c, Source::Env));
    }
    let candidates = beside(exe.as_deref());
    if let Some(program) = candidates.iter().find(|p| p.is_file()) {
        let command = WorkerCommand {
            program: program.clone(),
            args: Vec::new(),
        };
        return Ok((command, Source::BesideExe));
    }
    let looked: Vec<String> = candidates
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect();
    let beside = if looked.is_empty() {
        "the running executable's path is unknown".to_owned()
    } else {
        format!("there is no {}", looked.join(", "))
    };
    Err(Error::new(
        ErrorKind::Spawn,
        format!(
            "cannot find the worker program for the process strategy: Config.worker is not \
             set, {WORKER_ENV} is not set, and {beside}; build it with \
             `cargo build -p rates-process --bin {WORKER_BIN}`, or set {WORKER_ENV} to a worker \
             program (like `target/debug/{WORKER_BIN}` or `rates worker`)"
        ),
    ))
}

fn from_env(value: OsString) -> Result<WorkerCommand, Error> {
    let whole = PathBuf::from(&value);
    let text = match value.into_string() {
        Ok(text) => text,
        // Not UTF-8: it cannot be split into words, so it is a path.
        Err(_) => {
            return Ok(WorkerCommand {
                program: whole,
                args: Vec::new(),
            });
        }
    };
    if whole.is_file() {
        return Ok(WorkerCommand {
            program: whole,
            args: Vec::new(),
        });
    }
    let mut words = text.split_whitespace();
    let Some(program) = words.next() else {
        return Err(Error::invalid_input(format!(
            "{WORKER_ENV} is set but empty: set it to the worker program \
             (like `target/debug/{WORKER_BIN}` or `rates worker`) or unset it"
        )));
    };
    Ok(WorkerCommand {
        program: program.into(),
        args: words.map(str::to_owned).collect(),
    })
}

fn beside(exe: Option<&Path>) -> Vec<PathBuf> {
    let Some(dir) = exe.and_then(Path::parent) else {
        return Vec::new();
    };
    let dirs: Vec<&Path> = std::iter::once(dir).chain(dir.parent()).collect();
    std::iter::once(WORKER_BIN)
        .chain(OTHER_BINS)
        .flat_map(|bin| {
            let name = format!("{bin}{}", std::env::consts::EXE_SUFFIX);
            dirs.iter().map(move |d| d.join(&name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "rates-process-locate-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(dir.join("deps")).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn worker_name() -> String {
        format!("{WORKER_BIN}{}", std::env::consts::EXE_SUFFIX)
    }

    #[test]
    fn config_comes_first_then_the_environment() {
        let configured = WorkerCommand {
            program: "/opt/w".into(),
            args: vec!["x".into()],
        };
        let (c, source) = locate(Some(&configured), Some("/env/w".into()), None).unwrap();
        assert_eq!((c, source), (configured, Source::Config));

        let (c, source) = locate(None, Some("/usr/bin/rates  worker ".into()), None).unwrap();
        assert_eq!(source, Source::Env);
        assert_eq!(c.program, PathBuf::from("/usr/bin/rates"));
        assert_eq!(c.args, vec!["worker".to_owned()]);
    }

    #[test]
    fn an_existing_path_with_spaces_is_taken_whole() {
        let dir = TempDir::new();
        let program = dir.0.join("my worker");
        std::fs::write(&program, b"").unwrap();
        let (c, _) = locate(None, Some(program.clone().into_os_string()), None).unwrap();
        assert_eq!(c.program, program);
        assert!(c.args.is_empty());
    }

    #[test]
    fn an_empty_environment_variable_is_explained() {
        let err = locate(None, Some("  ".into()), None).unwrap_err();
        assert!(err.is_invalid_input());
        assert!(err.to_string().contains(WORKER_ENV), "{err}");
    }

    #[test]
    fn finds_the_worker_beside_or_above_the_executable() {
        let dir = TempDir::new();
        let exe = dir.0.join("deps").join("some-test-binary");
        assert!(locate(None, None, Some(exe.clone())).is_err());

        std::fs::write(dir.0.join(worker_name()), b"").unwrap();
        let (c, source) = locate(None, None, Some(exe.clone())).unwrap();
        assert_eq!(source, Source::BesideExe);
        assert_eq!(c.program, dir.0.join(worker_name()));

        std::fs::write(dir.0.join("deps").join(worker_name()), b"").unwrap();
        let (c, _) = locate(None, None, Some(exe)).unwrap();
        assert_eq!(c.program, dir.0.join("deps").join(worker_name()));
    }

    #[test]
    fn falls_back_to_the_test_and_bench_copies() {
        let dir = TempDir::new();
        let exe = dir.0.join("deps").join("strategies-0123");
        let bench = dir.0.join(format!(
            "rates-bench-worker{}",
            std::env::consts::EXE_SUFFIX
        ));
        std::fs::write(&bench, b"").unwrap();
        let (c, _) = locate(None, None, Some(exe.clone())).unwrap();
        assert_eq!(c.program, bench);
        std::fs::write(dir.0.join(worker_name()), b"").unwrap();
        let (c, _) = locate(None, None, Some(exe)).unwrap();
        assert_eq!(
            c.program,
            dir.0.join(worker_name()),
            "rates-worker comes first"
        );
    }

    #[test]
    fn nothing_found_names_every_place_and_the_fix() {
        let dir = TempDir::new();
        let exe = dir.0.join("deps").join("rates");
        let err = locate(None, None, Some(exe)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Spawn);
        let message = err.to_string();
        for needle in [
            "Config.worker",
            WORKER_ENV,
            &dir.0.join("deps").join(worker_name()).display().to_string(),
            &dir.0.join(worker_name()).display().to_string(),
            "cargo build -p rates-process",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from: {message}"
            );
        }
        let err = locate(None, None, None).unwrap_err();
        assert!(err.to_string().contains("path is unknown"), "{err}");
    }

    #[test]
    fn the_current_exe_can_be_its_own_worker() {
        let c = worker_in_current_exe(&["worker"]).unwrap();
        assert_eq!(c.program, std::env::current_exe().unwrap());
        assert_eq!(c.args, vec!["worker".to_owned()]);
    }
}
