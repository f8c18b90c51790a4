//! The synchronisation primitives the pool is built on: `std`'s, or `loom`'s
//! models of them under `--cfg loom`, so the queue and shutdown logic that
//! runs in production is exactly what `loom` checks.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread;

use std::time::Instant;

/// Locks `mutex`, ignoring poisoning: every critical section in this crate
/// leaves its data consistent (none can panic halfway), and user code never
/// runs under these locks.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sleeps on `condvar` until notified or `deadline`; the caller re-checks its
/// condition either way. The thread sleeps: nothing spins.
///
/// Under loom a timed wait is modelled as an untimed one, so the model
/// proves that every wait is ended by a notification, not by the clock.
pub(crate) fn wait_until<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> MutexGuard<'a, T> {
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    match timeout {
        Some(timeout) => {
            condvar
                .wait_timeout(guard, timeout)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0
        }
        None => condvar
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    }
}

/// Whether `deadline` has passed. Never under loom, whose timed waits
/// cannot time out.
pub(crate) fn passed(deadline: Option<Instant>) -> bool {
    !cfg!(loom) && deadline.is_some_and(|d| Instant::now() >= d)
}
