//! External strategies: programs in any language that speak the job
//! protocol of `docs/EXTERNAL.md`, measured by the same harness as the
//! built-in strategies.
//!
//! The harness starts the program itself (`sh -c 'exec COMMAND'`, so the
//! shell is replaced and not measured), in a process group of its own, with
//! the job as one JSON document on stdin. The program prints
//! `{"ready":true}` when it starts its run, then one JSON line per base, in
//! any order: `{"base":"USD","rates":{...}}` (or `"body"`: the answer as the
//! server sent it), or `{"base":"USD","error":"timeout"}`. Every line is
//! checked: against the embedded server, each base's rates must be the ones
//! it serves; every base must be answered exactly once.
//!
//! Its process tree is measured as a built-in run's is: CPU, peak memory,
//! threads, processes, context switches; start-up is the first request the
//! server sees, the first result the first line printed, the wall time from
//! `ready` to the last line.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rates_core::plan::{Cap, Shape};
use rates_core::{Config, CurrencyCode, Outcome, Rates, Run, Strategy};
use serde::{Deserialize, Serialize};

/// The job protocol's version (docs/EXTERNAL.md).
pub const PROTOCOL: u32 = 1;

/// The clients file read when `--clients` is not given, if it exists.
pub const DEFAULT_CLIENTS: &str = "clients/clients.toml";

/// The most worker processes the `processes` shape holds.
const MOST_PROCESSES: usize = 64;

/// The stack each thread of the `thread-per-base` shape is counted at (the
/// usual 8 MiB of a new thread's stack).
const THREAD_STACK: usize = 8 << 20;

/// The flags that make external programs strategies (`compare`, `sweep`,
/// `map`).
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ExternalOptions {
    /// An external strategy: NAME=COMMAND or NAME:SHAPE=COMMAND (SHAPE:
    /// one-at-a-time, tasks (the default), threads, thread-per-base or
    /// processes), run with `sh -c 'exec COMMAND'` in the current folder;
    /// repeatable. Name it in --strategies to measure it.
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME=COMMAND"))]
    pub external: Vec<String>,
    /// A clients file of external strategies (TOML, one table per program;
    /// default: clients/clients.toml when it exists).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub clients: Option<PathBuf>,
}

impl ExternalOptions {
    /// The external strategies these flags give: those of the clients
    /// file (or of [`DEFAULT_CLIENTS`] when it exists and none is given),
    /// then each `--external` flag.
    ///
    /// # Errors
    /// A clients file given that cannot be read, or a bad entry or flag.
    pub fn read(&self) -> Result<Externals> {
        let mut list = match &self.clients {
            Some(path) => read_clients(path)?,
            None if Path::new(DEFAULT_CLIENTS).is_file() => {
                read_clients(Path::new(DEFAULT_CLIENTS))?
            }
            None => Vec::new(),
        };
        let mut flagged = Vec::new();
        for flag in &self.external {
            let e = External::parse_flag(flag)?;
            flagged.push(e.name().to_owned());
            list.push(e);
        }
        Ok(Externals { list, flagged })
    }
}

/// The external strategies a command was given, as [`ExternalOptions::read`]
/// reads them; [`crate::registry::Registry::new`] adds the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct Externals {
    /// Every program, the clients file's first, in the order given.
    pub list: Vec<External>,
    /// The names given with `--external` on the command line: a command
    /// that is not asked to measure one of them says so.
    pub flagged: Vec<String>,
}

/// A program that speaks the job protocol, by name.
#[derive(Clone, Debug)]
pub struct External {
    name: &'static str,
    command: String,
    dir: PathBuf,
    shape: Shape,
    shape_name: String,
    about: String,
}

impl External {
    /// `command` run in `dir`, holding its requests as `shape` says
    /// (`one-at-a-time`, `tasks`, `threads`, `thread-per-base` or
    /// `processes`).
    ///
    /// # Errors
    /// A name that is not lowercase letters, digits and dashes, or is a
    /// built-in strategy's; an unknown shape; an empty command.
    pub fn new(name: &str, command: &str, dir: &Path, shape: &str, about: &str) -> Result<Self> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            bail!(
                "external strategy name `{name}`: use lowercase letters, digits and dashes \
                 (like py-asyncio)"
            );
        }
        if rates_registry::names().contains(&name) {
            bail!(
                "external strategy name `{name}` is a built-in strategy's: choose another \
                 (like ext-{name})"
            );
        }
        if command.trim().is_empty() {
            bail!("external strategy `{name}` has an empty command");
        }
        let shape_value = match shape {
            "one-at-a-time" => Shape::OneAtATime,
            "tasks" => Shape::Tasks,
            "threads" => Shape::Threads { cap: None },
            "thread-per-base" => Shape::ThreadPerBase {
                stack: THREAD_STACK,
            },
            "processes" => Shape::Processes {
                cap: Cap {
                    most: MOST_PROCESSES,
                    why: "a process per request in flight would cost a process start and its \
                          memory each for no gain",
                },
            },
            other => bail!(
                "external strategy `{name}`: unknown shape `{other}`: choose one-at-a-time, \
                 tasks, threads, thread-per-base or processes"
            ),
        };
        Ok(Self {
            // A handful per command, for the whole process: names are
            // `&'static str` like the built-in strategies'.
            name: Box::leak(name.to_owned().into_boxed_str()),
            command: command.to_owned(),
            dir: dir.to_owned(),
            shape: shape_value,
            shape_name: shape.to_owned(),
            about: about.to_owned(),
        })
    }

    /// `NAME=COMMAND` or `NAME:SHAPE=COMMAND` (shape `tasks` by default),
    /// run in the current folder: the `--external` flag.
    ///
    /// # Errors
    /// No `=`, or as [`External::new`].
    pub fn parse_flag(spec: &str) -> Result<Self> {
        let Some((name, command)) = spec.split_once('=') else {
            bail!(
                "--external `{spec}`: write NAME=COMMAND or NAME:SHAPE=COMMAND, like \
                 --external 'py-asyncio:tasks=python3 clients/python/rates_asyncio.py'"
            );
        };
        let (name, shape) = name.split_once(':').unwrap_or((name, "tasks"));
        let dir = std::env::current_dir().context("finding the current folder")?;
        Self::new(
            name.trim(),
            command,
            &dir,
            shape.trim(),
            "given with --external",
        )
        .with_context(|| format!("--external `{spec}`"))
    }

    /// The command as written.
    pub fn command_line(&self) -> &str {
        &self.command
    }

    /// Its shape's name.
    pub fn shape_name(&self) -> &str {
        &self.shape_name
    }

    /// What it is, in one line.
    pub fn about(&self) -> &str {
        &self.about
    }

    /// The folder it runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The command that starts it: the shell replaced by the program, in
    /// its folder, killed with SIGKILL if this thread's process dies.
    pub(crate) fn command(&self) -> Command {
        self.command_under(&[])
    }

    /// [`command`](Self::command) run under `wrapper` (a program and its
    /// arguments, say `perf stat ... --`), when it is not empty.
    pub(crate) fn command_under(&self, wrapper: &[std::ffi::OsString]) -> Command {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg("sh");
                cmd
            }
            None => Command::new("sh"),
        };
        cmd.arg("-c")
            .arg(format!("exec {}", self.command))
            .current_dir(&self.dir);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: prctl is async-signal-safe; nothing else runs between
            // fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
                    Ok(())
                });
            }
        }
        cmd
    }
}

impl Strategy for External {
    /// Protocol 1 has no stop message: the program can only be killed.
    fn stoppable(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn shape(&self) -> Shape {
        self.shape
    }

    /// Runs the program (see the [module docs](self)) and puts each base's
    /// outcome the moment its line arrives. The run is bounded: past
    /// [`External::bound`], or once the run's stop handle fires, the
    /// program's whole process group is killed and reaped; its unanswered
    /// bases are then timeouts (or cancelled, when stopped).
    fn run(&self, run: &Run<'_>) -> Result<Option<String>, rates_core::Error> {
        use rates_core::{Error, ErrorKind};
        let work = run.config.work.map_or(Duration::ZERO, |w| {
            let started = Instant::now();
            std::hint::black_box(w.run(b"measure"));
            started.elapsed()
        });
        let job = Job::new(run.config, run.bases, run.plan.in_flight, work);
        let input = serde_json::to_vec(&job)
            .map_err(|e| Error::new(ErrorKind::Runtime, format!("encoding the job: {e}")))?;
        let spawn_error = |e: std::io::Error| {
            Error::new(
                ErrorKind::Spawn,
                format!(
                    "{}: cannot start `{}` in {}: {e}",
                    self.name,
                    self.command,
                    self.dir.display()
                ),
            )
        };
        let program = Spawned::start(self.command(), input).map_err(spawn_error)?;
        let bound = self.bound(run);
        let started = Instant::now();
        let mut lines = Lines::new(run.bases, None);
        let mut broken = None;
        let mut killed = None;
        loop {
            match program.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(raw) => match lines.read(&raw) {
                    Ok(Said::Base(i, outcome)) => run.outcomes.put(i, outcome),
                    Ok(_) => {}
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                },
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if run.outcomes.stop().is_stopped() {
                        killed = Some("stopped");
                        break;
                    }
                    if started.elapsed() > bound {
                        killed = Some("timed out");
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // A program that closed its output is given two seconds to exit by
        // itself; one killed or broken, none.
        let grace = if killed.is_none() && broken.is_none() {
            Duration::from_secs(2)
        } else {
            Duration::ZERO
        };
        let (status, stderr) = program.end(grace);
        if let Some(e) = broken {
            return Err(Error::new(
                ErrorKind::Runtime,
                format!("{} broke the job protocol: {e:#}", self.name),
            ));
        }
        let unanswered = lines.unanswered();
        let why = match (killed, status) {
            (Some("stopped"), _) => None,
            (Some(_), _) => Some(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} did not answer within the run's bound of {:.0} s: killed with its \
                     process group",
                    self.name,
                    bound.as_secs_f64()
                ),
            )),
            (None, Ok(status)) if status.success() => Some(Error::new(
                ErrorKind::WorkerCrash,
                format!("{} exited without answering it", self.name),
            )),
            (None, Ok(status)) => Some(Error::new(
                ErrorKind::WorkerCrash,
                format!(
                    "{} exited with {status} without answering it: {}",
                    self.name,
                    stderr.lines().last().unwrap_or("no message on stderr")
                ),
            )),
            (None, Err(e)) => Some(Error::new(
                ErrorKind::WorkerCrash,
                format!("{}: waiting for it: {e}", self.name),
            )),
        };
        if let Some(why) = why {
            for i in unanswered {
                run.outcomes.put_error(i, why.clone());
            }
        }
        Ok(None)
    }
}

impl External {
    /// The longest a run of it may take before it is killed: every round
    /// of requests in flight taking all its attempts at the full timeouts
    /// and backoffs, the rate limit's pace and the CPU work, plus 30 s for
    /// an interpreter to start.
    pub fn bound(&self, run: &Run<'_>) -> Duration {
        let c = run.config;
        let rounds = run.bases.len().div_ceil(run.plan.in_flight.max(1));
        let attempt = c.connect_timeout + c.request_timeout + c.retry.max_backoff;
        let by_attempts = attempt.saturating_mul(c.retry.retries.saturating_add(1));
        let by_rate = c.rate_limit.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(run.bases.len() as f64 / r.rate())
        });
        by_attempts
            .saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
            .saturating_add(by_rate)
            .saturating_add(Duration::from_secs(30))
    }
}

/// A program started with its job, its stdout read line by line.
struct Spawned {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stderr: std::thread::JoinHandle<String>,
}

impl Spawned {
    fn start(mut cmd: Command, input: Vec<u8>) -> std::io::Result<Self> {
        use std::io::{BufRead as _, Read as _, Write as _};
        use std::os::unix::process::CommandExt as _;
        use std::process::Stdio;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn()?;
        let (send, lines) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        if let Some(mut stdin) = child.stdin.take() {
            threads.push(std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            }));
        }
        if let Some(stdout) = child.stdout.take() {
            threads.push(std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if send.send(line).is_err() {
                        break;
                    }
                }
            }));
        }
        let mut err = child.stderr.take();
        let stderr = std::thread::spawn(move || {
            // Read to the end (a program is never blocked on stderr), the
            // last 4 KiB kept.
            let mut tail: Vec<u8> = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Some(Ok(n @ 1..)) = err.as_mut().map(|e| e.read(&mut chunk)) {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 4096);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        });
        Ok(Self {
            child,
            lines,
            threads,
            stderr,
        })
    }

    /// Waits up to `grace` for it to exit, then kills what is left of its
    /// process group, reaps it and joins the threads: how it ended, and
    /// the end of its stderr.
    fn end(mut self, grace: Duration) -> (std::io::Result<std::process::ExitStatus>, String) {
        let waited = Instant::now();
        let mut exited = self.child.try_wait();
        while matches!(exited, Ok(None)) && waited.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(10));
            exited = self.child.try_wait();
        }
        let status = match exited {
            Ok(Some(status)) => Ok(status),
            _ => {
                let pgid =
                    nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                self.child.wait()
            }
        };
        // Whatever of the group outlived its leader goes too.
        let pgid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        drop(self.lines);
        for t in self.threads {
            let _ = t.join();
        }
        (status, self.stderr.join().unwrap_or_default())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    command: String,
    #[serde(default = "tasks")]
    shape: String,
    #[serde(default)]
    about: String,
}

fn tasks() -> String {
    "tasks".to_owned()
}

/// The external strategies of a clients file (TOML, a table per program;
/// see `clients/clients.toml`), each run in the file's folder.
///
/// # Errors
/// The file cannot be read or is not a valid clients file, naming it.
pub fn read_clients(path: &Path) -> Result<Vec<External>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the clients file {}", path.display()))?;
    let entries: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{}: not a clients file (TOML)", path.display()))?;
    let dir = path
        .canonicalize()
        .with_context(|| format!("finding {}", path.display()))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    entries
        .into_iter()
        .map(|(name, value)| {
            let entry: Entry = value.try_into().with_context(|| {
                format!(
                    "{}: [{name}]: give `command` (and optionally `shape`, `about`)",
                    path.display()
                )
            })?;
            External::new(&name, &entry.command, &dir, &entry.shape, &entry.about)
                .with_context(|| format!("{}", path.display()))
        })
        .collect()
}

/// What the program reads on stdin: protocol 1 of docs/EXTERNAL.md.
#[derive(Debug, Serialize)]
pub struct Job<'a> {
    /// The protocol version.
    pub protocol: u32,
    /// The URL of every request, `{base}` standing for the base.
    pub url: String,
    /// The bases, in input order.
    pub bases: &'a [CurrencyCode],
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Seconds to connect, at most.
    pub connect_timeout_s: f64,
    /// Seconds for one attempt, at most.
    pub timeout_s: f64,
    /// Retries after the first attempt, at most.
    pub retries: u32,
    /// Backoff before the first retry, doubling each retry.
    pub initial_backoff_s: f64,
    /// The backoff's cap.
    pub max_backoff_s: f64,
    /// A `Retry-After` longer than this fails the base at once.
    pub max_retry_after_s: f64,
    /// Requests per second at most, if limited.
    pub rate_limit_per_s: Option<f64>,
    /// CPU work per base after its answer, in seconds (0: none).
    pub work_s: f64,
    /// A body longer than this is an error (`body_too_large`).
    pub max_body_bytes: usize,
    /// The root certificate(s) to trust for https, PEM.
    pub ca_cert_pem: Option<&'a str>,
}

impl<'a> Job<'a> {
    /// The job of a run of `bases` under `config`, `concurrency` in flight.
    pub fn new(
        config: &'a Config,
        bases: &'a [CurrencyCode],
        concurrency: usize,
        work: Duration,
    ) -> Self {
        let symbols: Vec<&str> = config.symbols.iter().map(CurrencyCode::as_str).collect();
        Self {
            protocol: PROTOCOL,
            url: config
                .endpoint
                .template()
                .replace("{symbols}", &symbols.join(",")),
            bases,
            concurrency,
            connect_timeout_s: config.connect_timeout.as_secs_f64(),
            timeout_s: config.request_timeout.as_secs_f64(),
            retries: config.retry.retries,
            initial_backoff_s: config.retry.initial_backoff.as_secs_f64(),
            max_backoff_s: config.retry.max_backoff.as_secs_f64(),
            max_retry_after_s: config.retry.max_retry_after.as_secs_f64(),
            rate_limit_per_s: config.rate_limit.map(|r| r.rate()),
            work_s: work.as_secs_f64(),
            max_body_bytes: config.max_body_bytes,
            ca_cert_pem: config.ca_cert_pem.as_deref(),
        }
    }
}

/// One line a program prints.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    ready: Option<bool>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    rates: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default)]
    message: Option<String>,
}

/// The error kinds a line may name.
pub const ERROR_KINDS: [&str; 7] = [
    "http_status",
    "timeout",
    "connection",
    "decode",
    "body_too_large",
    "tls",
    "worker_crash",
];

/// What one line said.
#[derive(Debug)]
pub enum Said {
    /// Blank.
    Nothing,
    /// `{"ready":true}`: the run starts.
    Ready,
    /// A base's outcome: its place in the input, and the outcome.
    Base(usize, Outcome),
}

/// Reads a program's lines one by one, checking each: its shape, that its
/// base was asked for and not answered before, and (with [`Served`]) its
/// rates against the server's.
#[derive(Debug)]
pub struct Lines<'a> {
    /// Each base's places in the input not answered yet, first first.
    pending: HashMap<CurrencyCode, std::collections::VecDeque<usize>>,
    served: Option<&'a Served>,
    ready: bool,
    number: usize,
}

impl<'a> Lines<'a> {
    /// A reader for the answers to `bases`, checked against `served`.
    pub fn new(bases: &[CurrencyCode], served: Option<&'a Served>) -> Self {
        let mut pending: HashMap<CurrencyCode, std::collections::VecDeque<usize>> = HashMap::new();
        for (i, b) in bases.iter().enumerate() {
            pending.entry(*b).or_default().push_back(i);
        }
        Self {
            pending,
            served,
            ready: false,
            number: 0,
        }
    }

    /// The next line.
    ///
    /// # Errors
    /// A line that is not protocol 1 (naming its number and text), a base
    /// not asked for or answered twice, or rates that are not the server's.
    pub fn read(&mut self, raw: &str) -> Result<Said> {
        self.number += 1;
        let number = self.number;
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Said::Nothing);
        }
        let shown: String = raw.chars().take(120).collect();
        let line: Line = serde_json::from_str(raw).map_err(|e| {
            anyhow::anyhow!(
                "output line {number} is not a protocol-{PROTOCOL} line ({e}): {shown} \
                 (docs/EXTERNAL.md)"
            )
        })?;
        if line.ready == Some(true) {
            if line.base.is_some() || self.ready {
                bail!("output line {number}: `ready` comes once, on a line of its own: {shown}");
            }
            self.ready = true;
            return Ok(Said::Ready);
        }
        let Some(base) = line.base.as_deref() else {
            bail!("output line {number} names no base: {shown}");
        };
        let code = CurrencyCode::new(base)
            .map_err(|_| anyhow::anyhow!("output line {number}: `{base}` is not a base code"))?;
        let index = match self.pending.get_mut(&code) {
            Some(places) => match places.pop_front() {
                Some(i) => i,
                None => bail!("output line {number}: base {code} is answered twice: {shown}"),
            },
            None => bail!("output line {number}: base {code} was not asked for: {shown}"),
        };
        let attempts = line.attempts.unwrap_or(1).max(1);
        let result = match (&line.error, &line.rates, &line.body) {
            (Some(kind), None, None) => {
                if !ERROR_KINDS.contains(&kind.as_str()) {
                    bail!(
                        "output line {number}: unknown error kind `{kind}`: use one of {}",
                        ERROR_KINDS.join(", ")
                    );
                }
                let repr = serde_json::json!({
                    "kind": kind,
                    "status": line.status,
                    "message": line.message.clone().unwrap_or_else(|| format!("{kind} (said {base}'s program)")),
                });
                let error: rates_core::Error = serde_json::from_value(repr)
                    .map_err(|e| anyhow::anyhow!("output line {number}: {e}: {shown}"))?;
                Err(error)
            }
            (None, Some(rates), None) => {
                let mut parsed = BTreeMap::new();
                for (k, v) in rates {
                    let c = CurrencyCode::new(k).map_err(|_| {
                        anyhow::anyhow!("output line {number}: `{k}` is not a currency code")
                    })?;
                    if !(v.is_finite() && *v > 0.0) {
                        bail!(
                            "output line {number}: {code}'s {c} rate {v} is not a positive number"
                        );
                    }
                    parsed.insert(c, *v);
                }
                parsed.insert(code, 1.0);
                Ok(Rates {
                    base: code,
                    date: String::new(),
                    rates: parsed,
                })
            }
            (None, None, Some(body)) => {
                let rates = rates_core::decode(code, body.to_string().as_bytes()).map_err(|e| {
                    anyhow::anyhow!("output line {number}: the body of {code}: {e}")
                })?;
                Ok(rates)
            }
            _ => bail!(
                "output line {number}: give a base with exactly one of `rates`, `body` or \
                 `error`: {shown}"
            ),
        };
        if let (Some(served), Ok(rates)) = (self.served, &result)
            && let Some(why) = served.check(code, &rates.rates)
        {
            bail!("output line {number}: base {code}: not the server's rates: {why}");
        }
        Ok(Said::Base(
            index,
            Outcome {
                base: code,
                attempts,
                result,
            },
        ))
    }

    /// The places of the bases not answered yet.
    pub fn unanswered(&self) -> Vec<usize> {
        let mut places: Vec<usize> = self.pending.values().flatten().copied().collect();
        places.sort_unstable();
        places
    }

    /// The bases never answered, as an error naming the first few.
    ///
    /// # Errors
    /// When any base was not answered.
    pub fn finish(&self) -> Result<()> {
        let mut missing: Vec<String> = self
            .pending
            .iter()
            .flat_map(|(c, places)| places.iter().map(move |_| c.to_string()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        let n = missing.len();
        missing.truncate(5);
        bail!(
            "{n} base(s) never answered: {}{}",
            missing.join(", "),
            if n > 5 {
                format!(" and {} more", n - 5)
            } else {
                String::new()
            }
        );
    }
}

/// The rates the embedded server serves: what each base's rates must be.
#[derive(Debug, Clone)]
pub struct Served {
    codes: Vec<CurrencyCode>,
}

impl Served {
    /// The codes it lists for `symbols` (every reference code when empty).
    pub fn new(symbols: &[CurrencyCode]) -> Self {
        Self {
            codes: if symbols.is_empty() {
                rates_server::reference_codes().collect()
            } else {
                symbols.to_vec()
            },
        }
    }

    /// Why `rates` are not what the server serves for `base`, if they are
    /// not: a code missing or extra, or a rate off by more than rounding to
    /// six significant digits allows.
    fn check(&self, base: CurrencyCode, rates: &BTreeMap<CurrencyCode, f64>) -> Option<String> {
        for code in self.codes.iter().filter(|c| **c != base) {
            let Some(got) = rates.get(code) else {
                return Some(format!("no {code} rate, which the server sent"));
            };
            let want = rates_server::rate(base, *code);
            let close = (got - want).abs() <= want.abs() * 1e-5;
            if !close {
                return Some(format!("{code} {got} printed, the server sent {want:.6}"));
            }
        }
        rates
            .keys()
            .find(|c| **c != base && !self.codes.contains(c))
            .map(|c| format!("{c} printed, which the server did not send"))
    }
}

/// What a program's output says, checked.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    /// When it printed `ready`, since the spawn.
    pub ready: Option<Duration>,
    /// When it printed its first base, since the spawn.
    pub first: Option<Duration>,
    /// When it printed its last base.
    pub last: Option<Duration>,
    /// Bases with their rates.
    pub ok: usize,
    /// Bases with an error line.
    pub failed: usize,
    /// Attempts, as the lines count them (1 where a line does not say).
    pub attempts: u64,
    /// The first error line, as the outcome reads.
    pub first_failure: Option<String>,
}

/// Reads and checks a program's whole output: `stdout`, whose lines
/// arrived at `times` (since the spawn), for `bases`; with `served`, every
/// base's rates are checked against the server's.
///
/// # Errors
/// As [`Lines::read`], and a base never answered.
pub fn read_output(
    stdout: &[u8],
    times: &[Duration],
    bases: &[CurrencyCode],
    served: Option<&Served>,
) -> Result<Output> {
    let mut out = Output::default();
    let mut lines = Lines::new(bases, served);
    let text = String::from_utf8_lossy(stdout);
    for (i, raw) in text.lines().enumerate() {
        let at = times.get(i).copied().or(times.last().copied());
        match lines.read(raw)? {
            Said::Nothing => {}
            Said::Ready => out.ready = at,
            Said::Base(_, outcome) => {
                out.attempts += u64::from(outcome.attempts);
                out.first = out.first.or(at);
                out.last = at.or(out.last);
                if outcome.result.is_ok() {
                    out.ok += 1;
                } else {
                    out.failed += 1;
                    if out.first_failure.is_none() {
                        out.first_failure = Some(outcome.to_string());
                    }
                }
            }
        }
    }
    lines.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CurrencyCode {
        s.parse().unwrap()
    }

    fn line(base: &str, symbols: &[CurrencyCode]) -> String {
        let rates: BTreeMap<String, f64> = symbols
            .iter()
            .filter(|s| s.as_str() != base)
            .map(|s| (s.to_string(), rates_server::rate(c(base), *s)))
            .collect();
        serde_json::json!({"base": base, "rates": rates}).to_string()
    }

    #[test]
    fn good_output_is_counted() {
        let symbols = [c("EUR"), c("USD"), c("PLN")];
        let served = Served::new(&symbols);
        let bases = [c("USD"), c("GBP"), c("JPY")];
        let stdout = format!(
            "{{\"ready\":true}}\n{}\n{{\"base\":\"GBP\",\"error\":\"timeout\",\"attempts\":4}}\n{}\n",
            line("USD", &symbols),
            line("JPY", &symbols)
        );
        let times: Vec<Duration> = (1..=4).map(Duration::from_millis).collect();
        let out = read_output(stdout.as_bytes(), &times, &bases, Some(&served)).unwrap();
        assert_eq!(out.ok, 2);
        assert_eq!(out.failed, 1);
        assert_eq!(out.attempts, 6);
        assert_eq!(out.ready, Some(Duration::from_millis(1)));
        assert_eq!(out.first, Some(Duration::from_millis(2)));
        assert_eq!(out.last, Some(Duration::from_millis(4)));
        assert!(
            out.first_failure
                .as_deref()
                .is_some_and(|f| f.contains("GBP") && f.contains("timeout")),
            "{:?}",
            out.first_failure
        );
    }

    #[test]
    fn made_up_skipped_twice_or_unknown_bases_are_errors_naming_the_line() {
        let symbols = [c("EUR"), c("USD")];
        let served = Served::new(&symbols);
        let bases = [c("USD"), c("GBP")];
        let err = |stdout: &str| {
            read_output(stdout.as_bytes(), &[], &bases, Some(&served))
                .unwrap_err()
                .to_string()
        };
        let made_up = "{\"base\":\"USD\",\"rates\":{\"EUR\":1.5}}\n";
        assert!(err(made_up).contains("line 1: base USD: not the server's rates: EUR 1.5"));
        let usd = line("USD", &symbols);
        assert!(err(&format!("{usd}\n")).contains("1 base(s) never answered: GBP"));
        assert!(err(&format!("{usd}\n{usd}\n")).contains("line 2: base USD is answered twice"));
        assert!(err("{\"base\":\"CHF\",\"error\":\"timeout\"}\n").contains("not asked for"));
        assert!(err("hello\n").contains("line 1 is not a protocol-1 line"));
        assert!(err("{\"base\":\"USD\",\"error\":\"oops\"}\n").contains("unknown error kind"));
        // A missing code is as wrong as a wrong rate.
        assert!(err("{\"base\":\"USD\",\"rates\":{}}\n").contains("no EUR rate"));
    }

    #[test]
    fn a_body_is_decoded_with_the_shared_decoder() {
        let bases = [c("USD")];
        let served = Served::new(&[c("EUR")]);
        let eur = rates_server::rate(c("USD"), c("EUR"));
        let stdout = format!(
            "{{\"base\":\"USD\",\"body\":{{\"amount\":1.0,\"base\":\"USD\",\"date\":\"2019-04-09\",\"rates\":{{\"EUR\":{eur}}}}}}}\n"
        );
        let out = read_output(stdout.as_bytes(), &[], &bases, Some(&served)).unwrap();
        assert_eq!(out.ok, 1);
    }

    #[test]
    fn names_and_shapes_are_checked() {
        let dir = Path::new(".");
        assert!(External::new("tokio", "true", dir, "tasks", "").is_err());
        assert!(External::new("Py", "true", dir, "tasks", "").is_err());
        assert!(External::new("py", "true", dir, "fibres", "").is_err());
        let e = External::new("py", "true", dir, "processes", "").unwrap();
        assert!(matches!(e.shape(), Shape::Processes { .. }));
        assert!(External::parse_flag("no-equals").is_err());
        let e = External::parse_flag("x:threads=echo hi").unwrap();
        assert_eq!((e.name(), e.command_line()), ("x", "echo hi"));
    }
}
