"""py-sync: one base after another on one keep-alive connection (the
baseline), speaking protocol 1 of docs/EXTERNAL.md."""

import rates_common as rc


def main():
    job = rc.read_job()
    work = rc.Work(job["work_s"])
    limit = rc.RateLimit(job["rate_limit_per_s"])
    conn = rc.Connection(job)
    rc.ready()
    for base in job["bases"]:
        rc.emit(rc.fetch_blocking(job, conn, limit, work, base))
    conn.close()


if __name__ == "__main__":
    main()
