"""py-threads: one threading.Thread per base, each with its own connection,
at most `concurrency` alive at once (the job's concurrency is what the
machine's thread and open-files limits allow; see docs/EXTERNAL.md)."""

import threading

import rates_common as rc


def main():
    job = rc.read_job()
    work = rc.Work(job["work_s"])
    limit = rc.RateLimit(job["rate_limit_per_s"])
    alive = threading.BoundedSemaphore(job["concurrency"])

    def one(base):
        conn = rc.Connection(job)
        try:
            rc.emit(rc.fetch_blocking(job, conn, limit, work, base))
        finally:
            conn.close()
            alive.release()

    rc.ready()
    threads = []
    for base in job["bases"]:
        alive.acquire()
        thread = threading.Thread(target=one, args=(base,), name=f"rates-{base}")
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
