"""py-asyncio: one asyncio task per base on one event loop, at most
`concurrency` requests in flight (a semaphore and aiohttp's connector
limit), keep-alive connections from aiohttp's pool, each attempt bounded by
asyncio.timeout, results printed as they complete (as_completed). The CPU
work per item runs on the event loop, as CPU-bound code in a coroutine does."""

import asyncio
import random
import ssl

import aiohttp

import rates_common as rc


class AsyncRateLimit:
    def __init__(self, per_second):
        self.limit = rc.RateLimit(per_second)

    async def wait(self):
        delay = self.limit.slot()
        if delay > 0:
            await asyncio.sleep(delay)


async def attempt(job, session, base, target):
    try:
        async with asyncio.timeout(job["timeout_s"]):
            # Redirects are followed by `one`, as every client here does:
            # each hop an attempt, same origin only.
            async with session.get(target, allow_redirects=False) as response:
                cap = job["max_body_bytes"]
                length = response.headers.get("Content-Length")
                if length is not None:
                    rc.check_length(length, cap)
                    body = await response.read()
                else:
                    body = await response.content.read(cap + 1)
                return rc.decode(base, response.status, response.headers, body, cap)
    except rc.FetchError:
        raise
    except TimeoutError:
        raise rc.FetchError("timeout", f"no answer within {job['timeout_s']} s")
    except (aiohttp.ClientError, OSError) as e:
        raise rc.FetchError("connection", f"{type(e).__name__}: {e}")


async def one(job, session, gate, limit, work, base):
    tries = 0
    hops = 0
    target = rc.url_for(job, base)
    async with gate:
        while True:
            tries += 1
            await limit.wait()
            try:
                rates = await attempt(job, session, base, target)
                work.run()
                return rc.ok_line(base, rates, tries)
            except rc.Redirect as redirect:
                hops += 1
                try:
                    target = rc.follow(job, target, redirect, hops)
                except rc.FetchError as error:
                    return rc.error_line(base, error, tries)
            except rc.FetchError as error:
                delay = rc.backoff(job, tries - hops, error)
                if delay is None:
                    return rc.error_line(base, error, tries)
                await asyncio.sleep(delay)


async def run(job, work):
    ssl_context = None
    if job["url"].startswith("https:"):
        ssl_context = ssl.create_default_context()
        if job.get("ca_cert_pem"):
            ssl_context.load_verify_locations(cadata=job["ca_cert_pem"])
    connector = aiohttp.TCPConnector(limit=job["concurrency"], ssl=ssl_context)
    timeout = aiohttp.ClientTimeout(connect=job["connect_timeout_s"])
    gate = asyncio.Semaphore(job["concurrency"])
    limit = AsyncRateLimit(job["rate_limit_per_s"])
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"User-Agent": "rates-python-asyncio/1"}
    ) as session:
        # aiohttp sends a GET once more, silently, when the server closes the
        # connection without an answer. The job's retry policy is the one
        # that applies (and every request the server sees is an attempt this
        # client reports), so that hidden retry is turned off: a private
        # attribute of the pinned aiohttp 3.12 (client.py, _retry_connection).
        session._retry_connection = False
        tasks = [asyncio.create_task(one(job, session, gate, limit, work, b)) for b in job["bases"]]
        for done in asyncio.as_completed(tasks):
            rc.emit(await done)


def main():
    job = rc.read_job()
    work = rc.Work(job["work_s"])
    random.seed()
    rc.ready()
    asyncio.run(run(job, work))


if __name__ == "__main__":
    main()
