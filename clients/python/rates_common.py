"""What the five Python clients share: the job, the output lines, retries,
the rate limit, the CPU work, and a blocking HTTP client.

Every client speaks protocol 1 of docs/EXTERNAL.md: it reads one JSON job
document on stdin, prints {"ready": true} when it starts the run, then one
JSON line per base (its rates, or its error kind), in any order.
"""

import datetime
import email.utils
import http.client
import json
import random
import ssl
import sys
import threading
import time
import urllib.parse

PROTOCOL = 1

# Errors worth another attempt, as in the Rust strategies: timeouts, refused
# or broken connections, 408, 429 and 5xx answers.
RETRYABLE_STATUS = {408, 429}


class FetchError(Exception):
    """A failed attempt: kind is one of docs/EXTERNAL.md's error kinds."""

    def __init__(self, kind, message, status=None, retry_after=None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    def retryable(self):
        if self.kind in ("timeout", "connection"):
            return True
        if self.kind == "http_status":
            return self.status in RETRYABLE_STATUS or 500 <= (self.status or 0) < 600
        return False


def read_job():
    """The job on stdin, checked: exits 2 naming what is wrong."""
    try:
        job = json.load(sys.stdin)
    except ValueError as e:
        sys.exit(f"error: the job on stdin is not JSON: {e}")
    if job.get("protocol") != PROTOCOL:
        sys.exit(
            f"error: this client speaks protocol {PROTOCOL}, the job is protocol "
            f"{job.get('protocol')}"
        )
    return job


_print_lock = threading.Lock()


def emit(line):
    """Prints one JSON line at once (whole, even from many threads)."""
    text = json.dumps(line, separators=(",", ":")) + "\n"
    with _print_lock:
        sys.stdout.write(text)
        sys.stdout.flush()


def ready():
    emit({"ready": True})


def ok_line(base, rates, attempts):
    return {"base": base, "rates": rates, "attempts": attempts}


def error_line(base, error, attempts):
    line = {"base": base, "error": error.kind, "attempts": attempts, "message": str(error)}
    if error.status is not None:
        line["status"] = error.status
    return line


def url_for(job, base):
    return job["url"].replace("{base}", base)


def check_length(content_length, max_body_bytes):
    """FetchError when a Content-Length is not a number or is over the cap."""
    try:
        length = int(content_length)
    except ValueError:
        raise FetchError("decode", f"the Content-Length {content_length!r} is not a number")
    if length > max_body_bytes:
        raise FetchError("body_too_large", f"the body is {length} bytes, over {max_body_bytes}")


def read_body(content_length, max_body_bytes, read):
    """The body, read whole (a body cut short raises, and is retried as a
    broken connection), or FetchError body_too_large past the cap."""
    if content_length is not None:
        check_length(content_length, max_body_bytes)
        return read()
    return read(max_body_bytes + 1)


def parse_retry_after(value):
    """Retry-After in seconds: delay-seconds, or an HTTP-date (the wait
    until then, 0 when past); None when it is neither. A number too large
    for any clock is infinity: over any cap."""
    value = value.strip()
    try:
        seconds = float(value)
        return seconds if seconds >= 0 else None
    except ValueError:
        pass
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (at - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 307, 308)


class Redirect(FetchError):
    """A redirect answer: followed by the loops (follow), not retried."""

    def __init__(self, status, location):
        super().__init__("http_status", f"HTTP {status} redirect", status=status)
        self.location = location


def follow(job, current, error, hops):
    """The URL a redirect leads to from `current` (same origin only, never
    https to http, at most MAX_REDIRECTS per base), or the FetchError that
    ends the base: the rule of rates_core::redirect."""
    status = error.status
    if hops > MAX_REDIRECTS:
        raise FetchError("http_status", f"HTTP {status}: more than {MAX_REDIRECTS} redirects",
                         status=status)
    if not error.location:
        raise FetchError("http_status", f"HTTP {status} redirect without a Location header",
                         status=status)
    here = urllib.parse.urlsplit(current)
    there = urllib.parse.urlsplit(urllib.parse.urljoin(current, error.location.strip()))
    if here.scheme == "https" and there.scheme == "http":
        raise FetchError("http_status", f"HTTP {status} redirect from https to http "
                         f"({error.location}) refused", status=status)
    default = {"https": 443, "http": 80}

    def origin(u):
        return (u.scheme, (u.hostname or "").lower(), u.port or default.get(u.scheme))
    if origin(here) != origin(there):
        raise FetchError("http_status", f"HTTP {status} redirect to another origin "
                         f"({error.location}) is not followed", status=status)
    return urllib.parse.urlunsplit(there)


def decode(base, status, headers, body, max_body_bytes):
    """The rates in a 200 answer, or the FetchError it is."""
    if status in REDIRECTS:
        raise Redirect(status, headers.get("Location") if headers is not None else None)
    if status != 200:
        value = headers.get("Retry-After") if headers is not None else None
        retry_after = parse_retry_after(value) if value is not None else None
        raise FetchError("http_status", f"HTTP {status}", status=status, retry_after=retry_after)
    if len(body) > max_body_bytes:
        raise FetchError("body_too_large", f"the body is over {max_body_bytes} bytes")
    try:
        doc = json.loads(body)
        if doc["base"] != base:
            raise FetchError("decode", f"asked for {base}, the answer is for {doc['base']}")
        rates = doc["rates"]
        amount = float(doc.get("amount", 1.0))
        if amount != 1.0:
            rates = {k: v / amount for k, v in rates.items()}
        return rates
    except FetchError:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise FetchError("decode", f"the answer is not a rates document: {e}")


def backoff(job, retry, error):
    """The wait before retry number `retry` (1-based), or None: no retry."""
    if retry > job["retries"] or not error.retryable():
        return None
    if error.retry_after is not None:
        if error.retry_after > job["max_retry_after_s"]:
            return None
        return error.retry_after * (1 + 0.1 * random.random())
    exp = min(job["initial_backoff_s"] * 2 ** (retry - 1), job["max_backoff_s"])
    return exp / 2 + random.random() * exp / 2


def start_interval(per_second):
    """The least time between two request starts under `per_second`, or
    None: a second and a margin (10 to 50 ms, as the Rust throttle keeps)
    per `per_second` starts."""
    if not per_second:
        return None
    margin = min(max(0.25 / per_second, 0.01), 0.05)
    return (1.0 + margin) / per_second


class RateLimit:
    """Spaces request starts at least `interval` apart (thread-safe), so
    that the server never sees more than the rate in any second."""

    def __init__(self, per_second):
        self.interval = start_interval(per_second)
        self.lock = threading.Lock()
        self.next = 0.0

    def slot(self):
        """Reserves the next start: the seconds to sleep before it."""
        if self.interval is None:
            return 0.0
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
            return start - now

    def wait(self):
        delay = self.slot()
        if delay > 0:
            time.sleep(delay)


class Work:
    """The CPU work per item: a loop of integer mixing calibrated on this
    thread's CPU clock to take `work_s` seconds (none when 0). It holds the
    GIL while it runs, as CPU-bound Python does."""

    def __init__(self, work_s, rounds=None):
        """Calibrated here to `work_s`, or `rounds` as calibrated before
        (say, in the parent of forked workers)."""
        self.rounds = 0
        if rounds is not None:
            self.rounds = rounds
            return
        if work_s <= 0:
            return
        rounds = 1000
        while True:
            start = time.thread_time()
            self._spin(rounds)
            took = time.thread_time() - start
            if took >= 0.02:
                break
            rounds *= 4
        self.rounds = max(1, int(rounds * work_s / took))

    @staticmethod
    def _spin(rounds):
        x = 0x9E3779B9
        for _ in range(rounds):
            x = (x * 0x5DEECE66D + 11) & 0xFFFFFFFFFFFF
        return x

    def run(self):
        if self.rounds:
            self._spin(self.rounds)


class Connection:
    """One keep-alive HTTP/1.1 connection (http.client), reopened after a
    failure; a blocking client for the threaded and process clients."""

    def __init__(self, job):
        self.job = job
        self.conn = None
        parsed = urllib.parse.urlsplit(job["url"])
        self.https = parsed.scheme == "https"
        self.host = parsed.hostname
        self.port = parsed.port or (443 if self.https else 80)
        self.context = None
        if self.https:
            self.context = ssl.create_default_context()
            if job.get("ca_cert_pem"):
                self.context.load_verify_locations(cadata=job["ca_cert_pem"])

    def _open(self):
        timeout = self.job["timeout_s"]
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self.context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, base, target):
        """One attempt at the URL `target` (same origin as the job's): the
        rates, or a FetchError."""
        url = urllib.parse.urlsplit(target)
        path = url.path + ("?" + url.query if url.query else "")
        if self.conn is None:
            self.conn = self._open()
        try:
            self.conn.request("GET", path, headers={"User-Agent": "rates-python/1"})
            response = self.conn.getresponse()
            body = read_body(response.getheader("Content-Length"), self.job["max_body_bytes"],
                             response.read)
            if response.will_close:
                self.close()
            return decode(base, response.status, response.headers, body, self.job["max_body_bytes"])
        except FetchError as error:
            if error.kind == "body_too_large":
                # The rest of the body is still on the connection.
                self.close()
            raise
        except TimeoutError as e:
            self.close()
            raise FetchError("timeout", f"no answer within {self.job['timeout_s']} s: {e}")
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise FetchError("connection", f"{type(e).__name__}: {e}")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def fetch_blocking(job, conn, limit, work, base):
    """One base with retries on a blocking connection: its output line."""
    attempt = 0
    hops = 0
    target = url_for(job, base)
    while True:
        attempt += 1
        limit.wait()
        try:
            rates = conn.get(base, target)
            work.run()
            return ok_line(base, rates, attempt)
        except Redirect as redirect:
            hops += 1
            try:
                target = follow(job, target, redirect, hops)
            except FetchError as error:
                return error_line(base, error, attempt)
        except FetchError as error:
            # Redirects followed are attempts, not retries.
            delay = backoff(job, attempt - hops, error)
            if delay is None:
                return error_line(base, error, attempt)
            time.sleep(delay)
