"""CPU per PUBLISH and per received pub/sub message of the Redis client the adapter uses.

    .venv/bin/python -m benchmarks.redis_client_cost            # Redis at 127.0.0.1:6379
    .venv/bin/python -m benchmarks.redis_client_cost --redis redis://127.0.0.1:6380

What the session relay pays per frame on the client side (coredis on uvloop,
``fail_after`` around each PUBLISH or pipeline as ``RedisLink`` has), measured
in one process pinned to CPU 0: one PUBLISH after another (the relay's
publisher when frames do not queue), in pipelines (when they do), and with the
delivery to a subscriber. The floor under the relay's cost per forwarded
request (``--relay``). Bounded: ``--count`` messages each way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import time
import uuid

import anyio
import coredis
import uvloop

from benchmarks.run import DEFAULT_REDIS, SERVER_CPU

PAYLOAD = b"x" * 200  # about a relayed polling request's frame
WARMUP = 200
#: Frames per pipeline in the batched measurement (the relay sends up to 256).
PIPELINE = 16


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(url: str, count: int) -> None:
    channel = f"bench-client-cost-{uuid.uuid4().hex[:8]}"
    retry = coredis.retry.NoRetryPolicy()
    async with coredis.Redis.from_url(url, retry_policy=retry) as client:
        for _ in range(WARMUP):
            await client.publish(channel, PAYLOAD)
        wall, cpu = time.perf_counter(), cpu_s()
        for _ in range(count):
            with anyio.fail_after(5):
                await client.publish(channel, PAYLOAD)
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        print(f"PUBLISH, one after another: {1e6 * cpu / count:.0f} us CPU, "
              f"{1e6 * wall / count:.0f} us wall each")  # fmt: skip

        batch = PIPELINE
        wall, cpu = time.perf_counter(), cpu_s()
        for _ in range(count // batch):
            with anyio.fail_after(5):
                async with client.pipeline(transaction=False) as pipe:
                    replies = [pipe.publish(channel, PAYLOAD) for _ in range(batch)]
                for reply in replies:
                    await reply
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        done = batch * (count // batch)
        print(f"PUBLISH in pipelines of {batch} (as the relay's publisher batches): "
              f"{1e6 * cpu / done:.0f} us CPU, {1e6 * wall / done:.0f} us wall each")  # fmt: skip

        async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(channel)
            got = 0
            wall, cpu = time.perf_counter(), cpu_s()
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:

                    async def publish_all() -> None:
                        for _ in range(count):
                            await client.publish(channel, PAYLOAD)

                    tg.start_soon(publish_all)
                    while got < count:
                        if await pubsub.get_message() is not None:
                            got += 1
            wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
            print(f"PUBLISH and its delivery to a subscriber in the same process: "
                  f"{1e6 * cpu / count:.0f} us CPU, {1e6 * wall / count:.0f} us wall "
                  "each")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {SERVER_CPU})
    uvloop.run(measure(args.redis, args.count))


if __name__ == "__main__":
    main()
