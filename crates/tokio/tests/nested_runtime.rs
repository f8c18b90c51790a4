//! The blocking forms refuse, with a clear error, to block a thread that is
//! inside a tokio runtime; the async forms say what they need.

use std::time::Duration;

use rates_core::{Config, ErrorKind, Strategy};
use rates_server::RatesServer;
use rates_tokio::{Tokio, TokioBlocking};

fn config(server: &RatesServer) -> Config {
    Config::new(&server.endpoint()).unwrap()
}

#[test]
fn blocking_strategies_inside_a_runtime_return_a_runtime_error() {
    let server = RatesServer::start(Default::default()).unwrap();
    let config = config(&server);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let strategies: [(Box<dyn Strategy>, &str); 2] = [
        (Box::new(Tokio::new()), "rates_tokio::fetch"),
        (
            Box::new(TokioBlocking::new()),
            "rates_tokio::fetch_via_spawn_blocking",
        ),
    ];
    for (strategy, instead) in strategies {
        let err = runtime
            .block_on(async { strategy.fetch_codes(&["USD", "EUR"], &config) })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Runtime, "{err}");
        assert!(err.to_string().contains(instead), "{err}");
        // The strategy is dropped inside the runtime, which must not panic.
        runtime.block_on(async move { drop(strategy) });
    }
    assert_eq!(server.stats().requests, 0, "nothing was sent");
}

#[test]
fn the_same_strategy_works_once_outside_the_runtime() {
    let server = RatesServer::start(Default::default()).unwrap();
    let config = config(&server);
    let strategy = Tokio::new();
    let report = strategy.fetch_codes(&["USD", "EUR"], &config).unwrap();
    assert!(report.all_succeeded());
    // Its runtime was built on that first run; dropping the strategy inside
    // another runtime shuts it down without blocking or panicking.
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async move { drop(strategy) });
}

#[tokio::test]
async fn fetch_inside_the_callers_runtime() {
    let server = RatesServer::start(Default::default()).unwrap();
    let config = config(&server).with_concurrency(2);
    let bases = rates_core::parse_codes("USD,EUR,PLN").unwrap();
    let report = rates_tokio::fetch(&bases, &config).await.unwrap();
    assert!(report.all_succeeded());
    assert_eq!(report.strategy, "tokio");
    let report = rates_tokio::fetch_via_spawn_blocking(&bases, &config)
        .await
        .unwrap();
    assert!(report.all_succeeded());
    assert_eq!(report.strategy, "tokio-blocking");
    assert_eq!(server.stats().requests, 6);
}

#[test]
fn fetch_outside_any_runtime_is_an_error_not_a_panic() {
    let server = RatesServer::start(Default::default()).unwrap();
    let config = config(&server);
    let bases = rates_core::parse_codes("USD").unwrap();
    // Polled by an executor that is not tokio's.
    let err = futures_block_on(rates_tokio::fetch(&bases, &config)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime, "{err}");
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
    let err = futures_block_on(rates_tokio::fetch_via_spawn_blocking(&bases, &config)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime, "{err}");
    assert_eq!(server.stats().requests, 0);
}

#[test]
fn a_runtime_without_timers_or_io_is_explained() {
    let server = RatesServer::start(Default::default()).unwrap();
    let config = config(&server);
    let bases = rates_core::parse_codes("USD").unwrap();
    let no_timers = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let no_io = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for runtime in [no_timers, no_io] {
        let err = runtime
            .block_on(rates_tokio::fetch(&bases, &config))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Runtime, "{err}");
        assert!(err.to_string().contains("enable_all"), "{err}");
    }
    assert_eq!(server.stats().requests, 0);
}

/// A minimal executor that is not tokio: polls on this thread, parking
/// between wake-ups (bounded, so a bug cannot hang the test).
fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    for _ in 0..1000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
    panic!("the future never finished");
}

#[test]
fn fetch_can_be_spawned_as_a_task_of_its_own() {
    let server = RatesServer::start(Default::default()).unwrap();
    let config = config(&server).with_concurrency(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // `tokio::spawn` needs the futures to be Send.
    let report = runtime.block_on(async move {
        let bases = rates_core::parse_codes("USD,EUR,PLN").unwrap();
        let tasks = tokio::spawn(async move {
            let a = rates_tokio::fetch(&bases, &config).await;
            let b = rates_tokio::fetch_via_spawn_blocking(&bases, &config).await;
            (a, b)
        });
        tasks.await.unwrap()
    });
    assert!(report.0.unwrap().all_succeeded());
    assert!(report.1.unwrap().all_succeeded());
}
