#!/usr/bin/env python3
"""Opens N keep-alive connections to HOST:PORT, sends one complete request on each, reads the
response, and holds them all open and idle for HOLD seconds, then closes them. Bounded: it
stops by itself. Usage: hold.py PORT N HOLD"""
import asyncio
import sys

PORT, N, HOLD = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
REQ = b"GET /small HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: hold\r\n\r\n"


async def one(sem, conns):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", PORT), 10)
            w.write(REQ)
            await w.drain()
            await asyncio.wait_for(r.readuntil(b"ok\n"), 10)
            conns.append(w)
        except Exception:
            pass


async def main():
    conns = []
    sem = asyncio.Semaphore(500)
    await asyncio.gather(*(one(sem, conns) for _ in range(N)))
    print(len(conns), flush=True)
    await asyncio.sleep(HOLD)
    for w in conns:
        w.close()


asyncio.run(main())
