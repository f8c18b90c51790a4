//! Ctrl-C and SIGTERM: the first stops the command's work (a run's stop
//! handle, the measured child of a comparison) so that it reports what was
//! done; a second exits at once.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context as _, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Watches for SIGINT and SIGTERM while it lives.
#[derive(Debug)]
pub struct Interrupts {
    /// The first signal that came, 0 before any.
    got: Arc<AtomicI32>,
    /// Set with the first signal: what long waits poll (measured runs).
    flag: Arc<AtomicBool>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Interrupts {
    /// Starts watching: on the first signal `on_first` runs (on the
    /// watching thread) and the flag is set; on a second, the process
    /// exits at once with the first one's code (130 for SIGINT, 143 for
    /// SIGTERM).
    ///
    /// # Errors
    /// The signal handlers or the watching thread cannot be set up.
    pub fn watch(on_first: impl Fn() + Send + 'static) -> Result<Self> {
        let mut signals =
            Signals::new([SIGINT, SIGTERM]).context("setting up the Ctrl-C handler")?;
        let handle = signals.handle();
        let got = Arc::new(AtomicI32::new(0));
        let flag = Arc::new(AtomicBool::new(false));
        let (g, f) = (Arc::clone(&got), Arc::clone(&flag));
        let thread = std::thread::Builder::new()
            .name("rates-signals".into())
            .spawn(move || {
                // Ends when the handle is closed (the command is done).
                for signal in signals.forever() {
                    if g.compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        f.store(true, Ordering::Release);
                        eprintln!(
                            "\n{}: stopping; what is done will be reported (again to quit at once)",
                            name(signal)
                        );
                        on_first();
                    } else {
                        std::process::exit(code(g.load(Ordering::Acquire)));
                    }
                }
            })
            .context("starting the Ctrl-C handler's thread")?;
        Ok(Self {
            got,
            flag,
            handle,
            thread: Some(thread),
        })
    }

    /// The flag set by the first signal.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }

    /// The exit code the first signal asks for (130 or 143), if one came.
    pub fn exit_code(&self) -> Option<ExitCode> {
        match self.got.load(Ordering::Acquire) {
            0 => None,
            signal => Some(ExitCode::from(u8::try_from(code(signal)).unwrap_or(130))),
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The shell's exit code for a command ended by `signal`: 128 + its number.
fn code(signal: i32) -> i32 {
    128 + signal
}

fn name(signal: i32) -> &'static str {
    if signal == SIGTERM {
        "SIGTERM"
    } else {
        "Ctrl-C"
    }
}
