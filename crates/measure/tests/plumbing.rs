//! The measurement plumbing, checked with real processes: this test binary
//! re-runs itself as the measured load (`RATES_MEASURE_LOAD` says which),
//! so every figure comes from a real process tree.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use rates_measure::{Options, allowed_cpus, measure};

const LOAD: &str = "RATES_MEASURE_LOAD";
const MIB: u64 = 1 << 20;

fn main() -> ExitCode {
    if let Ok(load) = std::env::var(LOAD) {
        return run_load(&load);
    }
    let mut args = Arguments::from_args();
    // Each figure is this process's RUSAGE_CHILDREN change across one run:
    // two runs reaped at once would mix, so the trials run one at a time.
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("threads_started_are_counted", threads_started_are_counted),
        Trial::test("cpu_burnt_is_counted", cpu_burnt_is_counted),
        Trial::test(
            "memory_of_a_grandchild_is_in_the_tree_peak",
            memory_of_a_grandchild_is_in_the_tree_peak,
        ),
        Trial::test(
            "stdin_and_stdout_pass_through",
            stdin_and_stdout_pass_through,
        ),
        Trial::test(
            "a_timeout_ends_the_whole_tree",
            a_timeout_ends_the_whole_tree,
        ),
        Trial::test(
            "a_pinned_tree_runs_on_its_cpus_only",
            a_pinned_tree_runs_on_its_cpus_only,
        ),
        Trial::test(
            "an_interrupt_ends_the_whole_tree",
            an_interrupt_ends_the_whole_tree,
        ),
        Trial::test(
            "syscalls_of_threads_and_children_are_counted",
            syscalls_of_threads_and_children_are_counted,
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

/// The loads, as `name:arg:arg`.
fn run_load(load: &str) -> ExitCode {
    let parts: Vec<&str> = load.split(':').collect();
    let num = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match parts[0] {
        // K threads, each alive for MS milliseconds.
        "threads" => {
            let handles: Vec<_> = (0..num(1))
                .map(|_| {
                    let ms = num(2);
                    std::thread::spawn(move || std::thread::sleep(Duration::from_millis(ms)))
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
        }
        // Burn MS milliseconds of CPU on this thread (the point of the load).
        "cpu" => {
            let want = Duration::from_millis(num(1));
            let mut x = 0u64;
            while own_cpu() < want {
                for i in 0..100_000u64 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                }
                std::hint::black_box(x);
            }
        }
        // Start a child that holds MIB MiB for MS milliseconds, and wait for it.
        "grandchild" => {
            let status = self_command(&format!("hold:{}:{}", num(1), num(2))).status();
            if !status.is_ok_and(|s| s.success()) {
                return ExitCode::FAILURE;
            }
        }
        // Hold MIB MiB, every page touched, for MS milliseconds.
        "hold" => {
            let bytes = vec![1u8; usize::try_from(num(1) * MIB).unwrap_or(0)];
            std::thread::sleep(Duration::from_millis(num(2)));
            std::hint::black_box(&bytes);
        }
        // Print the CPUs this process may use, then those of a child it starts.
        "affinity" => {
            println!("{:?}", allowed_cpus().unwrap_or_default());
            let Ok(out) = self_command("affinity-leaf").output() else {
                return ExitCode::FAILURE;
            };
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        "affinity-leaf" => println!("{:?}", allowed_cpus().unwrap_or_default()),
        // K threads making N getppid calls each, and a child making N.
        "syscalls" => {
            let n = num(1);
            let handles: Vec<_> = (0..num(2))
                .map(|_| std::thread::spawn(move || getppid_calls(n)))
                .collect();
            let status = self_command(&format!("syscalls-leaf:{n}")).status();
            for h in handles {
                let _ = h.join();
            }
            if !status.is_ok_and(|s| s.success()) {
                return ExitCode::FAILURE;
            }
        }
        "syscalls-leaf" => getppid_calls(num(1)),
        "echo" => {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::stdout());
        }
        other => {
            eprintln!("unknown load {other}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// `n` getppid calls: one syscall each, nothing else.
fn getppid_calls(n: u64) {
    for _ in 0..n {
        std::hint::black_box(nix::unistd::getppid());
    }
}

fn own_cpu() -> Duration {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map_or(
        Duration::MAX,
        |u| {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
            };
            t(u.user_time()) + t(u.system_time())
        },
    )
}

fn self_command(load: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's own path"));
    cmd.env(LOAD, load);
    cmd
}

fn opts() -> Options {
    Options {
        interval: Duration::from_millis(10),
        timeout: Duration::from_secs(60),
        affinity: None,
        interrupt: None,
    }
}

fn check(cond: bool, what: String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(what.into()) }
}

fn threads_started_are_counted() -> Result<(), Failed> {
    let k = 12;
    let m = measure(self_command(&format!("threads:{k}:400")), None, &opts())?;
    check(
        m.status.success(),
        format!("load failed: {}", m.stderr_tail),
    )?;
    let threads = m.usage.peak_threads.ok_or("threads unmeasured")?;
    check(threads > k, format!("{k} threads + main, saw {threads}"))?;
    check(
        m.usage.peak_processes == Some(1),
        format!("one process, saw {:?}", m.usage.peak_processes),
    )
}

fn cpu_burnt_is_counted() -> Result<(), Failed> {
    let m = measure(self_command("cpu:300"), None, &opts())?;
    check(
        m.status.success(),
        format!("load failed: {}", m.stderr_tail),
    )?;
    let cpu = m.usage.cpu_user_s.ok_or("cpu unmeasured")? + m.usage.cpu_sys_s.unwrap_or(0.0);
    check(cpu >= 0.3, format!("burnt 0.3 s, saw {cpu} s"))?;
    check(
        m.usage.involuntary_ctx_switches.is_some() && m.usage.voluntary_ctx_switches.is_some(),
        "context switches unmeasured".to_owned(),
    )
}

fn memory_of_a_grandchild_is_in_the_tree_peak() -> Result<(), Failed> {
    let m = measure(self_command("grandchild:96:600"), None, &opts())?;
    check(
        m.status.success(),
        format!("load failed: {}", m.stderr_tail),
    )?;
    let peak = m.usage.peak_rss_bytes.ok_or("memory unmeasured")?;
    check(
        peak >= 96 * MIB,
        format!("grandchild held 96 MiB, tree peak {peak} B"),
    )?;
    let root = m
        .usage
        .root_peak_rss_bytes
        .ok_or("root memory unmeasured")?;
    check(
        root < 32 * MIB,
        format!("the child itself held little, saw {root} B"),
    )?;
    check(
        m.usage.peak_processes >= Some(2),
        format!("child and grandchild, saw {:?}", m.usage.peak_processes),
    )
}

fn stdin_and_stdout_pass_through() -> Result<(), Failed> {
    let m = measure(
        self_command("echo"),
        Some(b"{\"hello\":1}".to_vec()),
        &opts(),
    )?;
    check(
        m.status.success(),
        format!("load failed: {}", m.stderr_tail),
    )?;
    check(
        m.stdout == b"{\"hello\":1}",
        format!("{:?}", String::from_utf8_lossy(&m.stdout)),
    )
}

fn a_timeout_ends_the_whole_tree() -> Result<(), Failed> {
    let started = Instant::now();
    let options = Options {
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(300),
        affinity: None,
        interrupt: None,
    };
    let m = measure(self_command("grandchild:1:30000"), None, &options)?;
    check(m.timed_out, "the timeout was not reported".to_owned())?;
    check(
        !m.status.success(),
        "a killed run is not a success".to_owned(),
    )?;
    // The grandchild was killed with its group, so its pipe closed and the
    // output was collected: measure returned long before the 30 s hold.
    check(
        started.elapsed() < Duration::from_secs(20),
        format!("returned after {:?}", started.elapsed()),
    )
}

fn a_pinned_tree_runs_on_its_cpus_only() -> Result<(), Failed> {
    let mine = allowed_cpus()?;
    // The last CPU this process may use: a strict subset wherever there are two.
    let pinned = vec![*mine.last().ok_or("no CPU allowed")?];
    let options = Options {
        affinity: Some(pinned.clone()),
        ..opts()
    };
    let m = measure(self_command("affinity"), None, &options)?;
    check(
        m.status.success(),
        format!("load failed: {}", m.stderr_tail),
    )?;
    let want = format!("{pinned:?}\n{pinned:?}\n");
    check(
        String::from_utf8_lossy(&m.stdout) == want,
        format!(
            "child and grandchild should both run on {pinned:?}, printed {:?}",
            String::from_utf8_lossy(&m.stdout)
        ),
    )?;
    // The measuring thread is back on its own CPUs.
    check(
        allowed_cpus()? == mine,
        format!("this thread moved from {mine:?} to {:?}", allowed_cpus()?),
    )?;
    let err = measure(
        self_command("echo"),
        None,
        &Options {
            affinity: Some(vec![100_000]),
            ..opts()
        },
    )
    .expect_err("a CPU past the platform's count is refused");
    check(
        err.to_string().contains("100000"),
        format!("the error names the CPU: {err}"),
    )
}

fn an_interrupt_ends_the_whole_tree() -> Result<(), Failed> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let setter = {
        let flag = std::sync::Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, std::sync::atomic::Ordering::Release);
        })
    };
    let started = Instant::now();
    let options = Options {
        interrupt: Some(flag),
        ..opts()
    };
    // A grandchild that would hold on for 30 s.
    let m = measure(self_command("grandchild:1:30000"), None, &options)?;
    let _ = setter.join();
    check(m.interrupted, "the interrupt was not reported".to_owned())?;
    check(!m.timed_out, "reported as a timeout".to_owned())?;
    check(
        started.elapsed() < Duration::from_secs(10),
        format!("took {:?} to stop", started.elapsed()),
    )
}

/// 4 threads and a child process, 20,000 getppid calls each: the kernel's
/// count holds all 100,000, and little else (start-up: exec, the loader,
/// thread creation). Where the counter cannot be opened (tracefs not
/// mounted: scripts/perf-setup.sh mounts it), the count is absent and the
/// reason says how to fix it; nothing fails.
fn syscalls_of_threads_and_children_are_counted() -> Result<(), Failed> {
    let m = measure(self_command("syscalls:20000:4"), None, &opts())?;
    check(
        m.status.success(),
        format!("load failed: {}", m.stderr_tail),
    )?;
    match rates_measure::syscall_tracepoint() {
        Ok(_) => {
            let n = m.usage.syscalls.ok_or_else(|| {
                format!(
                    "tracefs is there but nothing was counted: {:?}",
                    m.usage.syscalls_unavailable
                )
            })?;
            check(
                (100_000..=110_000).contains(&n),
                format!("100,000 getppid calls and start-up, counted {n}"),
            )
        }
        Err(why) => {
            eprintln!("the syscall counter cannot be opened here ({why}): checked its absence");
            check(
                m.usage.syscalls.is_none()
                    && m.usage
                        .syscalls_unavailable
                        .as_deref()
                        .is_some_and(|w| w.contains("tracefs")),
                format!("no count and the reason: {:?}", m.usage),
            )
        }
    }
}
