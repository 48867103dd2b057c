#!/usr/bin/env python3
"""Turns bench/run's raw results into the Markdown appended to BENCHMARKS.md: medians over
rounds, ratios to nginx and to the direct origin."""
import datetime
import os
import statistics
import sys

results, duration, rounds, conns, cmd, env = sys.argv[1:7]


def ms(v):
    if v in ("NA", ""):
        return None
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            try:
                return float(v[: -len(unit)]) * f
            except ValueError:
                return None
    return None


rows = {}
mem = []
peaks = {}
index = []
trips = []
for line in open(results):
    sc, log, proxy, a, b, c, non2xx, *cpu = line.rstrip("\n").split("\t")
    if sc == "d":
        mem.append((proxy, int(a or 0), int(b or 0), int(c or 0)))
        continue
    if sc == "m":
        peaks[(b, log, proxy)] = int(a or 0)
        continue
    if sc == "i":
        index.append((int(a or 0), int(b or 0), int(c or 0)))
        continue
    if sc == "r":
        trips.append((log, int(a or 0), int(b or 0)))
        continue
    user, system = (float(cpu[0]), float(cpu[1])) if len(cpu) == 2 else (None, None)
    rows.setdefault((sc, log, proxy), []).append((float(a or 0), ms(b), ms(c), int(non2xx or 0), user, system))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


cpu = "unknown"
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
except OSError:
    pass

names = {"a": "(a) small response", "b": "(b) 16 KB file", "c": "(c) protected", "e": "(e) direct origin", "f": "(f) HTTP/2, small response", "g1k.css": "(g) cache hit, 1 KB", "g100k.css": "(g) cache hit, 100 KB", "g": "(g) cache hits"}
print()
print(f"## Run of {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
print()
print(f"- Machine: {os.cpu_count()} cores, {cpu}; loopback only; wrk, the origin (nginx, 1 worker) and the proxy (2 workers each) share the cores.")
print("- CPU µs/req: the proxy's own CPU time (all its processes and threads, from /proc, user + system) divided by the requests completed in the run; medians over rounds.")
print(f"- Command: `{env} bench/run`; wrk -t2 -c{conns} -d{duration}s per run, {rounds} interleaved rounds, medians.")
if any(p == "baseline" for _, _, p in rows):
    print(f"- baseline: an earlier rampart, `{os.environ.get('BASELINE', '?')}`, with the same configuration, interleaved with the others.")
if any(p == "relay" for _, _, p in rows):
    print("- null relay: bench/null-relay.c, byte copying between a client and its own origin connection with no HTTP at all; the most any epoll proxy can reach here.")
if any(sc.startswith("g") for sc, _, _ in rows):
    print("- (g): a 1 KB and a 100 KB stylesheet (max-age=3600) served from each proxy's cache after warming: rampart's memory tier, nginx's proxy_cache, Varnish's malloc storage (2 thread pools).")
if any(sc == "f" for sc, _, _ in rows):
    print(f"- (f): h2load -t2 -c{conns} -m{os.environ.get('STREAMS', '10')} -D{duration} over cleartext HTTP/2 (prior knowledge); p50/p99 from h2load's per-request log.")
print()
if rows:
    print("| scenario | access log | proxy | req/s | p50 ms | p99 ms | vs nginx | vs direct | CPU µs/req (user + sys) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
direct = {}
for (sc, log, proxy), v in rows.items():
    if proxy == "direct":
        direct[sc] = med([x[0] for x in v])
for sc in ("a", "b", "c", "f", "g1k.css", "g100k.css", "e"):
    for log in ("off", "on"):
        nginx = rows.get((sc, log, "nginx"))
        nginx_rps = med([x[0] for x in nginx]) if nginx else None
        base = direct.get("b") if sc == "b" else direct.get("e")
        for proxy in ("rampart", "rampart_redis", "baseline", "nginx", "haproxy", "varnish", "relay", "direct"):
            v = rows.get((sc, log, proxy))
            if not v:
                continue
            rps = med([x[0] for x in v])
            p50 = med([x[1] for x in v])
            p99 = med([x[2] for x in v])
            bad = sum(x[3] for x in v)
            vs_n = f"{rps / nginx_rps:.2f}×" if nginx_rps and proxy != "direct" else ""
            vs_d = f"{rps / base:.2f}×" if base and proxy != "direct" and not sc.startswith("g") else ""
            note = f" ({bad} {'failed' if sc == 'f' else 'non-2xx'})" if bad else ""
            f50 = f"{p50:.2f}" if p50 is not None else "?"
            f99 = f"{p99:.2f}" if p99 is not None else "?"
            user, system = med([x[4] for x in v]), med([x[5] for x in v])
            fcpu = f"{user + system:.1f} ({user:.1f} + {system:.1f})" if user is not None and system is not None else ""
            label = {"relay": "null relay (floor)", "rampart_redis": "rampart, Redis store"}.get(proxy, proxy)
            print(f"| {names.get(sc, sc)} | {log} | {label}{note} | {rps:,.0f} | {f50} | {f99} | {vs_n} | {vs_d} | {fcpu} |")
for sc in ("c",):
    for log in ("off", "on"):
        r, rr = rows.get((sc, log, "rampart")), rows.get((sc, log, "rampart_redis"))
        if r and rr:
            ratio = med([x[0] for x in rr]) / med([x[0] for x in r])
            print(f"\n- {names[sc]}, log {log}: rampart with the Redis store at {ratio:.2f}× rampart with the memory store.", end="")
for log, t, n in trips:
    print(f"\n- Redis round trips of the Redis-backed rampart (log {log}): {t:,} for {n:,} requests, {t / max(n, 1):.5f} per request.", end="")
if trips:
    print()
if mem:
    if rows:
        print()
    print("| (d) idle keep-alive connections | held | RSS before | RSS with them held | per connection |")
    print("|---|---:|---:|---:|---:|")
    for proxy, held, before, after in mem:
        if not held:
            print(f"| {proxy} | not measured: the connections were not all opened in time | | | |")
            continue
        per = (after - before) * 1024 / held
        print(f"| {proxy} | {held:,} | {before / 1024:.1f} MB | {after / 1024:.1f} MB | {per:,.0f} B |")
if peaks:
    print()
    everyone = ("rampart", "rampart_redis", "baseline", "nginx", "haproxy", "varnish")
    shown = [p for p in everyone if any(k[2] == p for k in peaks)]
    print("| peak RSS over a scenario's rounds (VmHWM, all processes) | access log | " + " | ".join(shown) + " |")
    print("|---|---|" + "---:|" * len(shown))
    for sc in ("a", "b", "c", "f", "g"):
        for log in ("off", "on"):
            cells = [peaks.get((sc, log, p)) for p in shown]
            if any(cells):
                print(f"| {names.get(sc, sc)} | {log} | " + " | ".join(f"{c / 1024:.1f} MB" if c else "" for c in cells) + " |")

for sc in ("g1k.css", "g100k.css"):
    r, n, v = (rows.get((sc, "off", p)) for p in ("rampart", "nginx", "varnish"))
    if r and (n or v):
        rr = med([x[0] for x in r])
        r99 = med([x[2] for x in r])
        parts = []
        for name, other in (("nginx", n), ("Varnish", v)):
            if other:
                o99 = med([x[2] for x in other])
                p99 = f", p99 {r99:.2f} vs {o99:.2f} ms" if r99 is not None and o99 is not None else ""
                parts.append(f"{rr / med([x[0] for x in other]):.2f}× {name}{p99}")
        if sc == "g1k.css":
            print()
        print(f"- {names[sc]}: rampart at " + "; ".join(parts) + ".")
if index:
    print()
    print("| rampart's cache index | objects | RSS before | RSS after | per object |")
    print("|---|---:|---:|---:|---:|")
    for objects, before, after in index:
        per = (after - before) * 1024 / objects if objects else 0
        print(f"| small objects (3-byte body) | {objects:,} | {before / 1024:.1f} MB | {after / 1024:.1f} MB | {per:,.0f} B |")
