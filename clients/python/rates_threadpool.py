"""py-threadpool: concurrent.futures.ThreadPoolExecutor with `concurrency`
threads, each keeping one keep-alive connection; results printed as they
complete (as_completed)."""

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

import rates_common as rc


def main():
    job = rc.read_job()
    work = rc.Work(job["work_s"])
    limit = rc.RateLimit(job["rate_limit_per_s"])
    local = threading.local()
    conns = []
    conns_lock = threading.Lock()

    def one(base):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = rc.Connection(job)
            with conns_lock:
                conns.append(conn)
        return rc.fetch_blocking(job, conn, limit, work, base)

    rc.ready()
    with ThreadPoolExecutor(max_workers=job["concurrency"]) as pool:
        futures = [pool.submit(one, base) for base in job["bases"]]
        for future in as_completed(futures):
            rc.emit(future.result())
    for conn in conns:
        conn.close()


if __name__ == "__main__":
    main()
