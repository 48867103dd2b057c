#!/usr/bin/env python3
"""How long a rule change through the management API takes to be in force on the edge.

    bench/api-latency.py [BINARY] [--rules 1000] [--changes 200]

rampart (release build by default) runs from a file with RULES custom rules in one zone, in
front of a small origin of this script's. Each of CHANGES rounds replaces one rule through
`PUT /client/v4/zones/{zone}/custom_rules/{id}` so that it blocks a path not blocked before,
and the clock stops when the edge first answers that path with 403: the API's checks, the
file's atomic write, the reload and the first request under the new rules, all included.
Prints p50, p99 and the maximum in milliseconds. Loopback only; stops what it starts.
"""

import argparse
import hashlib
import http.client
import http.server
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "rampart_bench_api_latency"
EDGE, ADMIN = 18661, 18662


class Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


def config(origin_port, rules):
    lines = [
        "[server]",
        f'listen = ["127.0.0.1:{EDGE}"]',
        f'admin_listen = "127.0.0.1:{ADMIN}"',
        'access_log = "off"',
        'audit_log = "audit.jsonl"',
        "",
        "[[zone]]",
        'name = "bench.test"',
        'hosts = ["bench.test"]',
        f'origin = "http://127.0.0.1:{origin_port}"',
        "",
    ]
    for i in range(rules):
        lines += [
            "[[zone.custom_rule]]",
            f'id = "r{i}"',
            f"expression = 'http.request.uri.path eq \"/never-{i}\"'",
            'action = "block"',
            "",
        ]
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    lines += [
        "[[api_token]]",
        'name = "bench"',
        f'sha256 = "{digest}"',
        'scopes = ["firewall:read", "firewall:edit"]',
    ]
    return "\n".join(lines) + "\n"


def edge_status(conn, path):
    conn.request("GET", path, headers={"Host": "bench.test", "User-Agent": "api-latency"})
    r = conn.getresponse()
    r.read()
    return r.status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?", default=str(ROOT / "target/release/rampart"))
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=200)
    args = ap.parse_args()

    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="rampart-api-latency.")
    site = pathlib.Path(tmp, "site.toml")
    site.write_text(config(origin.server_address[1], args.rules))
    proc = subprocess.Popen(
        [args.binary, "run", "-c", str(site)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                edge = http.client.HTTPConnection("127.0.0.1", EDGE, timeout=5)
                if edge_status(edge, "/") == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("rampart did not come up")
        admin = http.client.HTTPConnection("127.0.0.1", ADMIN, timeout=10)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        took = []
        for k in range(args.changes):
            path = f"/probe-{k}"
            rule = {"expression": f'http.request.uri.path eq "{path}"', "action": "block"}
            assert edge_status(edge, path) == 200
            start = time.perf_counter()
            admin.request("PUT", "/client/v4/zones/bench.test/custom_rules/r0", json.dumps(rule), headers)
            answer = admin.getresponse()
            body = answer.read()
            if answer.status != 200:
                sys.exit(f"the API answered {answer.status}: {body[:300]!r}")
            while edge_status(edge, path) != 403:
                pass
            took.append((time.perf_counter() - start) * 1000)
        took.sort()
        p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
        print(
            f"{args.rules} rules, {args.changes} changes: p50 {statistics.median(took):.1f} ms, "
            f"p99 {p99:.1f} ms, max {took[-1]:.1f} ms (file {site.stat().st_size // 1024} KB)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        origin.shutdown()


if __name__ == "__main__":
    main()
