//! What the server saw, for tests and reports to assert on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rates_core::CurrencyCode;

/// Arrival times kept at most (16 bytes each); past this the server stops
/// recording arrivals so a long `rates serve` cannot grow without bound.
const MAX_ARRIVALS: usize = 2_000_000;

/// A snapshot of what the server saw since it started or was last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received (every path, every answer).
    pub requests: u64,
    /// Connections accepted (TCP; with TLS, handshakes that failed included):
    /// how much a client reuses its connections.
    pub connections: u64,
    /// Requests by `User-Agent` (`""` for none); at most 16 different
    /// values are told apart, the rest count as `"(other)"`.
    pub user_agents: BTreeMap<String, u64>,
    /// Answers sent, by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests closed without an answer (drop, truncation, stall).
    pub aborted: u64,
    /// Most requests being handled at the same time.
    pub peak_in_flight: usize,
    /// Requests per base (rates requests with a valid base only).
    pub per_base: BTreeMap<CurrencyCode, u32>,
    /// Arrival time of each request since the window began, in order, with
    /// its base when it named a valid one.
    pub arrivals: Vec<(Duration, Option<CurrencyCode>)>,
}

impl Stats {
    /// The most arrivals in any window of length `window` (half-open).
    pub fn max_in_window(&self, window: Duration) -> usize {
        let mut sorted: Vec<Duration> = self.arrivals.iter().map(|a| a.0).collect();
        sorted.sort_unstable();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..sorted.len() {
            while sorted[hi] >= sorted[lo] + window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    /// Arrival times of the requests for `base`, in order.
    pub fn arrivals_of(&self, base: CurrencyCode) -> Vec<Duration> {
        self.arrivals
            .iter()
            .filter(|a| a.1 == Some(base))
            .map(|a| a.0)
            .collect()
    }

    /// Answers with this status.
    pub fn status_count(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// Statuses counted without a lock; others go to `Inner::other_statuses`.
const COMMON_STATUSES: [u16; 5] = [200, 404, 422, 429, 500];

/// Different `User-Agent` values told apart at most.
const MAX_USER_AGENTS: usize = 16;

#[derive(Debug)]
struct Inner {
    origin: Instant,
    requests: u64,
    user_agents: BTreeMap<String, u64>,
    other_statuses: BTreeMap<u16, u64>,
    peak_in_flight: usize,
    per_base: HashMap<CurrencyCode, u32>,
    arrivals: Vec<(Duration, Option<CurrencyCode>)>,
    /// Accepted (not rate-limited) arrivals in the last second.
    window: std::collections::VecDeque<Instant>,
}

#[derive(Debug)]
pub(crate) struct Recorder {
    in_flight: AtomicUsize,
    connections: AtomicU64,
    common_statuses: [AtomicU64; COMMON_STATUSES.len()],
    aborted: AtomicU64,
    inner: Mutex<Inner>,
}

/// Decrements the in-flight count when a request ends, however it ends.
pub(crate) struct InFlight<'a>(&'a Recorder);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the recorder decided for an arriving request.
pub(crate) struct Arrival<'a> {
    pub(crate) guard: InFlight<'a>,
    /// When it arrived.
    pub(crate) at: Instant,
    /// This request's number for its base (1-based), 0 when it has none.
    pub(crate) nth: u32,
    /// This request's number among all the server received (1-based).
    pub(crate) index: u64,
    /// `Some(retry_after)` when the server's rate limit refuses it.
    pub(crate) limited: Option<Duration>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            common_statuses: Default::default(),
            aborted: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                origin: Instant::now(),
                requests: 0,
                user_agents: BTreeMap::new(),
                other_statuses: BTreeMap::new(),
                peak_in_flight: 0,
                per_base: HashMap::new(),
                arrivals: Vec::new(),
                window: std::collections::VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an accepted connection.
    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an arrival; checks the rate limit (`per_second`) for it.
    pub(crate) fn arrive(
        &self,
        base: Option<CurrencyCode>,
        user_agent: Option<&str>,
        limit: Option<f64>,
    ) -> Arrival<'_> {
        let now = Instant::now();
        let current = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = InFlight(self);
        let mut inner = self.lock();
        inner.requests += 1;
        let agent = user_agent.unwrap_or("");
        if let Some(n) = inner.user_agents.get_mut(agent) {
            *n += 1;
        } else if inner.user_agents.len() < MAX_USER_AGENTS {
            inner.user_agents.insert(agent.to_owned(), 1);
        } else {
            *inner.user_agents.entry("(other)".to_owned()).or_insert(0) += 1;
        }
        inner.peak_in_flight = inner.peak_in_flight.max(current);
        if inner.arrivals.len() < MAX_ARRIVALS {
            let at = now.saturating_duration_since(inner.origin);
            inner.arrivals.push((at, base));
        }
        let mut limited = None;
        if let Some(rate) = limit {
            let allowed = (rate.floor() as usize).max(1);
            while inner
                .window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                inner.window.pop_front();
            }
            if inner.window.len() >= allowed {
                let oldest = inner.window[0];
                limited = Some((oldest + Duration::from_secs(1)).saturating_duration_since(now));
            } else {
                inner.window.push_back(now);
            }
        }
        let nth = match base {
            Some(b) if limited.is_none() => {
                let n = inner.per_base.entry(b).or_insert(0);
                *n += 1;
                *n
            }
            _ => 0,
        };
        Arrival {
            guard,
            at: now,
            nth,
            index: inner.requests,
            limited,
        }
    }

    pub(crate) fn answered(&self, status: u16) {
        match COMMON_STATUSES.iter().position(|s| *s == status) {
            Some(i) => {
                self.common_statuses[i].fetch_add(1, Ordering::Relaxed);
            }
            None => *self.lock().other_statuses.entry(status).or_insert(0) += 1,
        }
    }

    pub(crate) fn aborted(&self) {
        self.aborted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let inner = self.lock();
        let mut by_status = inner.other_statuses.clone();
        for (status, count) in COMMON_STATUSES.iter().zip(&self.common_statuses) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                by_status.insert(*status, count);
            }
        }
        Stats {
            requests: inner.requests,
            connections: self.connections.load(Ordering::Relaxed),
            user_agents: inner.user_agents.clone(),
            by_status,
            aborted: self.aborted.load(Ordering::Relaxed),
            peak_in_flight: inner.peak_in_flight,
            per_base: inner.per_base.iter().map(|(k, v)| (*k, *v)).collect(),
            arrivals: inner.arrivals.clone(),
        }
    }

    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        inner.origin = Instant::now();
        inner.requests = 0;
        inner.user_agents.clear();
        self.connections.store(0, Ordering::Relaxed);
        inner.other_statuses.clear();
        for count in &self.common_statuses {
            count.store(0, Ordering::Relaxed);
        }
        self.aborted.store(0, Ordering::Relaxed);
        inner.peak_in_flight = self.in_flight.load(Ordering::Relaxed);
        inner.per_base.clear();
        inner.arrivals.clear();
        inner.window.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counting() {
        let ms = Duration::from_millis;
        let stats = Stats {
            arrivals: [0, 100, 999, 1000, 1500]
                .into_iter()
                .map(|m| (ms(m), None))
                .collect(),
            ..Stats::default()
        };
        assert_eq!(stats.max_in_window(Duration::from_secs(1)), 3);
    }

    #[test]
    fn rate_limit_refuses_past_the_limit() {
        let r = Recorder::new();
        let usd = "USD".parse().ok();
        assert!(r.arrive(usd, None, Some(2.0)).limited.is_none());
        assert!(r.arrive(usd, None, Some(2.0)).limited.is_none());
        let third = r.arrive(usd, None, Some(2.0));
        assert!(third.limited.is_some_and(|d| d <= Duration::from_secs(1)));
        assert_eq!(third.nth, 0, "refused requests do not count for the base");
        drop(third);
        assert_eq!(r.snapshot().per_base[&"USD".parse().unwrap()], 2);
    }

    #[test]
    fn connections_and_user_agents_are_counted_and_reset() {
        let r = Recorder::new();
        r.connected();
        drop(r.arrive(None, Some("rates/0.1.0"), None));
        drop(r.arrive(None, Some("rates/0.1.0"), None));
        drop(r.arrive(None, None, None));
        for i in 0..20 {
            drop(r.arrive(None, Some(&format!("bot/{i}")), None));
        }
        let stats = r.snapshot();
        assert_eq!(stats.connections, 1);
        assert_eq!(stats.user_agents["rates/0.1.0"], 2);
        assert_eq!(stats.user_agents[""], 1);
        assert_eq!(stats.user_agents.len(), MAX_USER_AGENTS + 1);
        assert_eq!(stats.user_agents.values().sum::<u64>(), 23);
        r.reset();
        let stats = r.snapshot();
        assert_eq!((stats.connections, stats.user_agents.len()), (0, 0));
    }
}
