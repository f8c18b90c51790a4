//! The per-base attempt logic, written once for every strategy.
//!
//! [`BaseFetch`] is a small state machine: it says when to sleep (throttle
//! slot or backoff) and when to send; the strategy does the sleeping and the
//! sending its own way (a thread sleeps, a task awaits a timer) and feeds the
//! result back. A strategy that sends elsewhere (a process pool hands the
//! attempt to a child) reserves the throttle slot here and has the sender
//! wait for it ([`sending_elsewhere`](BaseFetch::sending_elsewhere)), then
//! says when the request really left ([`record_sent`](BaseFetch::record_sent)),
//! so the throttle's send log covers it as it covers every other strategy.

use std::time::{Duration, Instant};

use crate::{Config, CurrencyCode, Error, Outcome, Rates, Throttle, decode};

/// A response as the clients hand it over: status, `Retry-After`,
/// `Location`, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The parsed `Retry-After` header, when there was one.
    pub retry_after: Option<Duration>,
    /// The `Location` header of a redirect
    /// ([`is_redirect`](crate::redirect::is_redirect)), when there was one.
    pub location: Option<String>,
    /// The body (read only for success statuses; capped by the client).
    pub body: Vec<u8>,
}

/// What the strategy should do next for a base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Wait this long (sleep or await a timer), then ask again.
    Sleep(Duration),
    /// Send one request now and [`record`](BaseFetch::record) its result.
    Send,
    /// Finished: take the [`outcome`](BaseFetch::into_outcome).
    Done,
}

/// The attempt loop for one base: wait for the throttle, send, classify,
/// back off, retry.
#[derive(Debug)]
pub struct BaseFetch<'a> {
    base: CurrencyCode,
    config: &'a Config,
    throttle: Option<&'a Throttle>,
    attempts: u32,
    not_before: Option<Instant>,
    slot: Option<Instant>,
    /// When the request in flight was sent (for the latency record).
    sent_at: Option<Instant>,
    /// The sender is elsewhere: reserve throttle slots, never sleep on them.
    elsewhere: bool,
    /// The slot reserved for the request in flight, when sending elsewhere.
    send_at: Option<Instant>,
    /// Where redirects led: the path and query to request instead of the
    /// endpoint's, on the same origin.
    redirected: Option<String>,
    /// Redirects followed (each one also an attempt).
    hops: u32,
    result: Option<Result<Rates, Error>>,
}

impl<'a> BaseFetch<'a> {
    /// Starts the loop for `base`.
    pub fn new(base: CurrencyCode, config: &'a Config, throttle: Option<&'a Throttle>) -> Self {
        Self {
            base,
            config,
            throttle,
            attempts: 0,
            not_before: None,
            slot: None,
            sent_at: None,
            elsewhere: false,
            send_at: None,
            redirected: None,
            hops: 0,
            result: None,
        }
    }

    /// "Reserve here, send elsewhere": under a rate limit [`next`](Self::next)
    /// reserves each attempt's throttle slot and says [`Step::Send`] at once
    /// instead of sleeping until it; the sender must not send before
    /// [`send_at`](Self::send_at), and the result comes back with the time
    /// the request really left, through [`record_sent`](Self::record_sent),
    /// which records the send in the throttle's log.
    #[must_use]
    pub fn sending_elsewhere(mut self) -> Self {
        self.elsewhere = true;
        self
    }

    /// When sending elsewhere, the throttle slot of the attempt just told to
    /// [`Step::Send`]: the request must not leave before it. `None` with no
    /// rate limit (send at once).
    pub fn send_at(&self) -> Option<Instant> {
        self.send_at
    }

    /// The base being fetched.
    pub fn base(&self) -> CurrencyCode {
        self.base
    }

    /// The full URL to request (where redirects led, if they did).
    pub fn url(&self) -> String {
        match &self.redirected {
            Some(path) => format!(
                "{}://{}{path}",
                self.config.endpoint.scheme(),
                self.config.endpoint.authority()
            ),
            None => self.config.endpoint.url(self.base, &self.config.symbols),
        }
    }

    /// The path and query to request (for clients that connect themselves),
    /// where redirects led, if they did.
    pub fn path_and_query(&self) -> String {
        match &self.redirected {
            Some(path) => path.clone(),
            None => self
                .config
                .endpoint
                .path_and_query(self.base, &self.config.symbols),
        }
    }

    /// What to do at `now`. Once the run's stop handle has fired, nothing
    /// more is sent: the base is done, [`Cancelled`](crate::ErrorKind::Cancelled).
    pub fn next(&mut self, now: Instant) -> Step {
        if self.result.is_some() {
            return Step::Done;
        }
        if let Some(cause) = self.config.stopped() {
            self.result = Some(Err(Error::cancelled(cause)));
            return Step::Done;
        }
        if let Some(t) = self.not_before {
            if t > now {
                return Step::Sleep(t - now);
            }
            self.not_before = None;
        }
        if let (Some(throttle), true) = (self.throttle, self.elsewhere) {
            self.send_at = Some(throttle.reserve(now));
            self.sent_at = Some(now);
            return Step::Send;
        }
        if let Some(throttle) = self.throttle {
            let slot = *self.slot.get_or_insert_with(|| throttle.reserve(now));
            if slot > now {
                return Step::Sleep(slot - now);
            }
            self.slot = None;
            throttle.record_send(slot, now);
            if let Some(progress) = &self.config.progress {
                progress.record_send(now);
            }
        }
        self.sent_at = Some(now);
        Step::Send
    }

    /// Feeds back the result of a request sent elsewhere (see
    /// [`sending_elsewhere`](Self::sending_elsewhere)) that left at `sent`:
    /// records the send in the throttle's log, and the request's latency
    /// from `sent` (the wait for its slot not included).
    pub fn record_sent(
        &mut self,
        sent: Instant,
        response: Result<RawResponse, Error>,
        now: Instant,
    ) {
        if let (Some(throttle), Some(slot)) = (self.throttle, self.send_at.take()) {
            throttle.record_send(slot, sent);
            if let Some(progress) = &self.config.progress {
                progress.record_send(sent);
            }
        }
        self.sent_at = Some(sent);
        self.record(response, now);
    }

    /// Feeds back the result of the request sent after [`Step::Send`].
    pub fn record(&mut self, response: Result<RawResponse, Error>, now: Instant) {
        self.attempts += 1;
        if let (Some(progress), Some(sent)) = (&self.config.progress, self.sent_at.take()) {
            progress.record_latency(now.saturating_duration_since(sent));
        }
        let error = match response {
            Ok(r) if (200..300).contains(&r.status) => match decode(self.base, &r.body) {
                Ok(rates) => {
                    // The item's CPU work, here: on whatever thread or task
                    // drives this loop.
                    if let Some(work) = &self.config.work {
                        work.run(&r.body);
                        if let Some(progress) = &self.config.progress {
                            progress.work_done();
                        }
                    }
                    self.result = Some(Ok(rates));
                    return;
                }
                Err(e) => e,
            },
            Ok(r) if crate::redirect::is_redirect(r.status) => match self.follow(&r) {
                // Sent again at once (through the throttle, like any
                // request), to where the redirect points.
                Ok(()) => return,
                Err(e) => e,
            },
            Ok(r) => Error::status(r.status, r.retry_after),
            Err(e) => e,
        };
        // Stopped: no retry is scheduled, and the error (likely the stop's
        // own doing: a socket shut down) reads as cancelled.
        if let Some(cause) = self.config.stopped() {
            self.result = Some(Err(Error::cancelled(cause)));
            return;
        }
        // Redirects followed are attempts, not retries.
        match self
            .config
            .retry
            .delay(self.attempts - self.hops, &error, fastrand::f64())
        {
            Some(wait) => self.not_before = Some(now + wait),
            None => self.result = Some(Err(error)),
        }
    }

    /// Follows the redirect `r`: the next request goes where it points, up
    /// to [`MAX_REDIRECTS`](crate::redirect::MAX_REDIRECTS) for the base.
    fn follow(&mut self, r: &RawResponse) -> Result<(), Error> {
        self.hops += 1;
        if self.hops > crate::redirect::MAX_REDIRECTS {
            return Err(Error::new(
                crate::ErrorKind::Status(r.status),
                format!(
                    "HTTP {}: more than {} redirects",
                    r.status,
                    crate::redirect::MAX_REDIRECTS
                ),
            ));
        }
        let path = crate::redirect::resolve(
            &self.config.endpoint,
            r.status,
            &self.path_and_query(),
            r.location.as_deref(),
        )?;
        self.redirected = Some(path);
        Ok(())
    }

    /// Requests sent so far, redirects followed included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The outcome; a fetch abandoned before it was done reads as a
    /// worker crash.
    pub fn into_outcome(self) -> Outcome {
        let result = self.result.unwrap_or_else(|| {
            Err(Error::new(
                crate::ErrorKind::WorkerCrash,
                "the fetch was abandoned before it finished",
            ))
        });
        Outcome {
            base: self.base,
            attempts: self.attempts,
            result,
        }
    }
}

/// Runs the attempt loop on the calling thread, sleeping between attempts
/// (a sleep ends early when the run's stop handle fires). `send` performs
/// one request for the given URL.
///
/// A panic inside `send` unwinds to the caller: inside a run,
/// [`Outcomes::fill`](crate::Outcomes::fill) makes it the base's outcome.
pub fn fetch_blocking(
    base: CurrencyCode,
    config: &Config,
    throttle: Option<&Throttle>,
    mut send: impl FnMut(&str) -> Result<RawResponse, Error>,
) -> Outcome {
    let mut fetch = BaseFetch::new(base, config, throttle);
    loop {
        match fetch.next(Instant::now()) {
            Step::Sleep(d) => match &config.stop {
                Some(stop) => {
                    stop.sleep(d);
                }
                None => std::thread::sleep(d),
            },
            Step::Send => {
                let result = send(&fetch.url());
                fetch.record(result, Instant::now());
            }
            Step::Done => return fetch.into_outcome(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RateLimit;

    fn config() -> Config {
        let mut c = Config::new("http://127.0.0.1:1/rates?base={base}").unwrap();
        c.retry.initial_backoff = Duration::from_millis(2);
        c
    }

    fn ok_body(base: &str) -> RawResponse {
        RawResponse {
            status: 200,
            retry_after: None,
            location: None,
            body: format!(r#"{{"base":"{base}","rates":{{"EUR":0.9}}}}"#).into_bytes(),
        }
    }

    /// A 500 for the first call, a success for USD after.
    fn fail_first(calls: u32) -> Result<RawResponse, Error> {
        Ok(if calls == 1 {
            RawResponse {
                status: 500,
                retry_after: None,
                location: None,
                body: vec![],
            }
        } else {
            ok_body("USD")
        })
    }

    #[test]
    fn retries_then_succeeds() {
        let cfg = config();
        let mut calls = 0;
        let out = fetch_blocking("USD".parse().unwrap(), &cfg, None, |url| {
            assert_eq!(url, "http://127.0.0.1:1/rates?base=USD");
            calls += 1;
            fail_first(calls)
        });
        assert_eq!(out.attempts, 2);
        assert!(out.result.is_ok());
    }

    #[test]
    fn latency_is_recorded_per_request() {
        let mut cfg = config();
        let progress = crate::Progress::default();
        cfg.progress = Some(progress.clone());
        let mut calls = 0;
        fetch_blocking("USD".parse().unwrap(), &cfg, None, |_| {
            calls += 1;
            std::thread::sleep(Duration::from_millis(20));
            fail_first(calls)
        });
        assert_eq!(
            progress.requests(),
            2,
            "one latency per request, retries included"
        );
        let p50 = progress.latency_quantile(0.5).unwrap();
        assert!(p50 >= Duration::from_millis(19), "{p50:?}");
    }

    #[test]
    fn redirects_are_followed_as_attempts_up_to_the_bound() {
        let cfg = config().with_retries(1);
        let moved = |to: &str| RawResponse {
            status: 301,
            retry_after: None,
            location: Some(to.to_owned()),
            body: vec![],
        };
        let mut urls = Vec::new();
        let out = fetch_blocking("USD".parse().unwrap(), &cfg, None, |url| {
            urls.push(url.to_owned());
            Ok(match urls.len() {
                1 => moved("/v1/rates?base=USD"),
                2 => RawResponse {
                    status: 500,
                    retry_after: None,
                    location: None,
                    body: vec![],
                },
                _ => ok_body("USD"),
            })
        });
        assert!(out.result.is_ok(), "{out}");
        assert_eq!(out.attempts, 3, "the hop is an attempt, not a retry");
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:1/rates?base=USD",
                "http://127.0.0.1:1/v1/rates?base=USD",
                "http://127.0.0.1:1/v1/rates?base=USD",
            ]
        );
        let mut hops = 0;
        let out = fetch_blocking("USD".parse().unwrap(), &cfg, None, |_| {
            hops += 1;
            Ok(moved("/again"))
        });
        assert_eq!(out.attempts, crate::redirect::MAX_REDIRECTS + 1);
        let e = out.result.unwrap_err();
        assert!(e.to_string().contains("more than 5 redirects"), "{e}");
    }

    #[test]
    fn gives_up_after_the_retries() {
        let cfg = config().with_retries(2);
        let out = fetch_blocking("USD".parse().unwrap(), &cfg, None, |_| {
            Err(Error::new(crate::ErrorKind::Connection, "refused"))
        });
        assert_eq!(out.attempts, 3);
        assert!(out.result.unwrap_err().is_connection());
    }

    #[test]
    fn decode_errors_are_not_retried() {
        let cfg = config();
        let out = fetch_blocking("USD".parse().unwrap(), &cfg, None, |_| {
            Ok(RawResponse {
                status: 200,
                retry_after: None,
                location: None,
                body: b"{oops".to_vec(),
            })
        });
        assert_eq!(out.attempts, 1);
        assert!(out.result.unwrap_err().is_decode());
    }

    #[test]
    fn sending_elsewhere_reserves_without_sleeping_and_logs_the_real_send() {
        let cfg = config();
        let limit = RateLimit::per_second(2.0).unwrap();
        let throttle = Throttle::new(limit);
        let t0 = Instant::now();
        let mut first =
            BaseFetch::new("USD".parse().unwrap(), &cfg, Some(&throttle)).sending_elsewhere();
        assert_eq!(first.next(t0), Step::Send);
        assert_eq!(first.send_at(), Some(t0));
        let mut second =
            BaseFetch::new("EUR".parse().unwrap(), &cfg, Some(&throttle)).sending_elsewhere();
        assert_eq!(second.next(t0), Step::Send, "no sleep: the sender waits");
        assert_eq!(second.send_at(), Some(t0 + limit.interval()));
        // The first request really left 400 ms late, the second on time.
        let late = t0 + Duration::from_millis(400);
        first.record_sent(late, Ok(ok_body("USD")), late + Duration::from_millis(5));
        second.record_sent(t0 + limit.interval(), Ok(ok_body("EUR")), late);
        // So a third may not leave within a window of the late one.
        let mut third =
            BaseFetch::new("PLN".parse().unwrap(), &cfg, Some(&throttle)).sending_elsewhere();
        assert_eq!(third.next(t0), Step::Send);
        assert!(third.send_at().unwrap() >= late + limit.window());
        assert_eq!(first.into_outcome().attempts, 1);
    }

    #[test]
    fn throttle_makes_the_machine_sleep() {
        let cfg = config();
        let throttle = Throttle::new(RateLimit::per_second(10.0).unwrap());
        let t0 = Instant::now();
        throttle.reserve(t0);
        let mut f = BaseFetch::new("USD".parse().unwrap(), &cfg, Some(&throttle));
        match f.next(t0) {
            Step::Sleep(d) => assert!(d >= Duration::from_millis(100)),
            other => panic!("expected a sleep, got {other:?}"),
        }
        assert_eq!(f.next(t0 + Duration::from_millis(200)), Step::Send);
    }
}
