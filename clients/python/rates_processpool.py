"""py-processpool: concurrent.futures.ProcessPoolExecutor of `concurrency`
worker processes (at most 64, forked), each keeping one keep-alive
connection; the parent prints each result as it completes. The rate limit
is one schedule shared by every worker (a lock and a shared double)."""

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import rates_common as rc

MOST_WORKERS = 64

_worker = {}


class SharedRateLimit:
    """rc.RateLimit's schedule in shared memory, for worker processes."""

    def __init__(self, per_second, ctx):
        self.interval = rc.start_interval(per_second)
        self.next = ctx.Value("d", 0.0)

    def wait(self):
        if self.interval is None:
            return
        with self.next.get_lock():
            now = time.monotonic()
            start = max(now, self.next.value)
            self.next.value = start + self.interval
        if start > now:
            time.sleep(start - now)


def init(job, limit, rounds):
    _worker["job"] = job
    _worker["limit"] = limit
    # Calibrated once, in the parent, before `ready`: not once per worker.
    _worker["work"] = rc.Work(job["work_s"], rounds=rounds)
    _worker["conn"] = rc.Connection(job)


def one(base):
    w = _worker
    return rc.fetch_blocking(w["job"], w["conn"], w["limit"], w["work"], base)


def main():
    job = rc.read_job()
    ctx = multiprocessing.get_context("fork")
    limit = SharedRateLimit(job["rate_limit_per_s"], ctx)
    work = rc.Work(job["work_s"])
    workers = max(1, min(job["concurrency"], MOST_WORKERS, len(job["bases"])))
    rc.ready()
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=init, initargs=(job, limit, work.rounds)
    ) as pool:
        futures = [pool.submit(one, base) for base in job["bases"]]
        for future in as_completed(futures):
            rc.emit(future.result())


if __name__ == "__main__":
    main()
