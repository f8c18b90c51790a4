//! `loom` models of the pool's queue and shutdown logic: every interleaving
//! of the workers, the caller and the shutdown (up to the preemption bound
//! set by `scripts/loom.sh`) must deliver each result once, in order, and
//! end every wait; loom fails a model on any deadlock or leak.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p rates-pool --lib --release loom`.
//! The models stay small (at most three threads besides the caller) so the
//! search finishes in seconds.

use std::sync::atomic::{AtomicUsize, Ordering};

use rates_core::Error;

use crate::Pool;
use crate::sync::thread;

/// Runs `model` under loom for every interleaving, and prints how many it
/// explored (shown with `--nocapture`, as `scripts/loom.sh` runs it).
fn check(name: &str, model: impl Fn() + Send + Sync + 'static) {
    // Counted outside loom's world: a plain std atomic, not a modelled one.
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&runs);
    loom::model(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    let n = runs.load(Ordering::Relaxed);
    println!("{name}: {n} interleavings explored");
    // One interleaving would mean nothing ran concurrently: not a model.
    assert!(n > 1, "{name}: only {n} interleaving");
}

fn quiet_panics() {
    // The panicking-job model panics on purpose in every iteration; keep the
    // output readable. Any other panic (a failed assertion, a deadlock loom
    // found) still goes to the default hook.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&DELIBERATE) {
            default(info);
        }
    }));
}

const DELIBERATE: &str = "a deliberate panic in a job";

#[test]
fn loom_every_job_reports_in_order_then_shutdown_joins() {
    check(
        "loom_every_job_reports_in_order_then_shutdown_joins",
        || {
            let pool = Pool::new(2, |worker| worker).unwrap();
            let out = pool.map(0..2_u32, |_, n| n * 10);
            let out: Vec<u32> = out.into_iter().map(Result::unwrap).collect();
            assert_eq!(out, [0, 10]);
            assert_eq!(pool.shutdown(), 0);
        },
    );
}

#[test]
fn loom_shutdown_mid_run_cancels_the_rest_and_ends_the_wait() {
    check(
        "loom_shutdown_mid_run_cancels_the_rest_and_ends_the_wait",
        || {
            let pool = Pool::new(1, |_| ()).unwrap();
            let batch = pool.submit(0..2_u32, |(), n| n);
            // Races the worker: it may have taken none, one or both jobs.
            assert_eq!(pool.shutdown(), 0);
            let out = batch.wait();
            assert_eq!(out.len(), 2);
            // One worker takes jobs in order, so once a job was cancelled every
            // later one was too, and each finished job reported its own value.
            let mut cancelled = false;
            for (n, result) in (0..2).zip(&out) {
                match result {
                    Ok(v) => {
                        assert!(!cancelled, "job {n} ran after an earlier one was cancelled");
                        assert_eq!(*v, n);
                    }
                    Err(e) => {
                        assert!(e.is_worker_crash(), "{e}");
                        cancelled = true;
                    }
                }
            }
        },
    );
}

#[test]
fn loom_a_waiting_caller_is_released_by_a_concurrent_drop() {
    check(
        "loom_a_waiting_caller_is_released_by_a_concurrent_drop",
        || {
            let pool = Pool::new(1, |_| ()).unwrap();
            let batch = pool.submit([7_u32], |(), n| n);
            let waiter = thread::spawn(move || batch.wait());
            drop(pool);
            let out = waiter.join().unwrap();
            assert_eq!(out.len(), 1);
            assert!(matches!(&out[0], Ok(7)) || out[0].as_ref().is_err_and(Error::is_worker_crash));
        },
    );
}

#[test]
fn loom_a_panicking_job_is_its_items_result_and_the_worker_goes_on() {
    quiet_panics();
    check(
        "loom_a_panicking_job_is_its_items_result_and_the_worker_goes_on",
        || {
            let pool = Pool::new(1, |_| ()).unwrap();
            let out = pool.map([true, false], |(), fail| {
                if fail {
                    std::panic::panic_any(DELIBERATE);
                }
                1_u8
            });
            assert!(out[0].as_ref().is_err_and(Error::is_panic));
            assert_eq!(out[1].as_ref().ok(), Some(&1));
        },
    );
}

#[test]
fn loom_two_workers_racing_a_shutdown_account_for_every_job() {
    check(
        "loom_two_workers_racing_a_shutdown_account_for_every_job",
        || {
            let pool = Pool::new(2, |_| ()).unwrap();
            let batch = pool.submit(0..3_u32, |(), n| n);
            assert_eq!(pool.shutdown(), 0);
            let out = batch.wait();
            assert_eq!(out.len(), 3);
            for (n, result) in (0..3).zip(&out) {
                match result {
                    Ok(v) => assert_eq!(*v, n),
                    Err(e) => assert!(e.is_worker_crash(), "{e}"),
                }
            }
        },
    );
}
