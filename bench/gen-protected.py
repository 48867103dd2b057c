#!/usr/bin/env python3
"""Generates the "protected" scenario's security configuration for each proxy, equivalent in
intent: 1,000 blocked IP ranges, 100 request rules (path wildcards, header contains, IP sets,
query and method checks) of which none matches the benchmark request, and one rate limit
that is never reached. Usage: gen-protected.py OUTDIR"""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

# 1,000 /24 ranges in 10.0.0.0/8, 172.16.0.0/12 and 198.18.0.0/15: never 127.0.0.0/8.
ranges = []
for i in range(1000):
    if i < 600:
        ranges.append(f"10.{i // 250}.{i % 250}.0/24")
    elif i < 900:
        j = i - 600
        ranges.append(f"172.{16 + j // 250}.{j % 250}.0/24")
    else:
        j = i - 900
        ranges.append(f"198.18.{j}.0/24")

rules = []   # (kind, rampart expression)
for i in range(100):
    k = i % 5
    if k == 0:
        rules.append(("path", f'http.request.uri.path wildcard "/admin{i}/*"'))
    elif k == 1:
        rules.append(("ua", f'http.user_agent contains "badbot-{i}"'))
    elif k == 2:
        rules.append(("header", f'any(http.request.headers["x-attack-{i}"][*] contains "1")'))
    elif k == 3:
        rules.append(("ipset", f'ip.src in {{192.0.2.{i}/32 198.51.100.{i}/32 203.0.113.{i}/32}}'))
    else:
        rules.append(("query", f'http.request.uri.query contains "union-select-{i}" and http.request.method eq "GET"'))

with open(os.path.join(out, "rampart-protected.toml"), "w") as f:
    for kind, expr in rules:
        f.write("\n[[zone.custom_rule]]\n")
        f.write(f'description = "bench {kind} rule"\n')
        f.write(f"expression = '{expr}'\n")
        f.write('action = "block"\n')
    f.write('\n[[zone.rate_limit]]\ndescription = "global per-IP limit, never reached"\n')
    f.write("expression = 'true'\ncharacteristics = [\"ip.src\"]\nperiod = 10\n")
    f.write("requests_per_period = 1000000\nmitigation_timeout = 0\n")
    for r in ranges:
        f.write(f'\n[[zone.ip_access_rule]]\ntarget = "ip_range"\nvalue = "{r}"\nmode = "block"\n')

# nginx: a geo block for the ranges, maps for the rules, limit_req for the rate limit.
paths = [int(e.split("/admin")[1].split("/")[0]) for k, e in rules if k == "path"]
uas = [e.split('"')[1] for k, e in rules if k == "ua"]
headers = [e.split('"')[1] for k, e in rules if k == "header"]
ips = [i for i, (k, _) in enumerate(rules) if k == "ipset"]
queries = [e.split('"')[1] for k, e in rules if k == "query"]
with open(os.path.join(out, "nginx-http.conf"), "w") as f:
    f.write("geo $blocked_ip {\n    default 0;\n")
    for r in ranges:
        f.write(f"    {r} 1;\n")
    for i in ips:
        for p in ("192.0.2", "198.51.100", "203.0.113"):
            f.write(f"    {p}.{i}/32 1;\n")
    f.write("}\n")
    f.write("map $uri $blocked_path {\n    default 0;\n")
    for p in paths:
        f.write(f"    ~*^/admin{p}/ 1;\n")
    f.write("}\n")
    f.write("map $http_user_agent $blocked_ua {\n    default 0;\n")
    for u in uas:
        f.write(f"    ~{u} 1;\n")
    f.write("}\n")
    f.write("map $args $blocked_query {\n    default 0;\n")
    for q in queries:
        f.write(f"    ~{q} 1;\n")
    f.write("}\n")
    f.write("limit_req_zone $binary_remote_addr zone=perip:10m rate=100000r/s;\n")
with open(os.path.join(out, "nginx-location.conf"), "w") as f:
    f.write("if ($blocked_ip) { return 403; }\n")
    f.write("if ($blocked_path) { return 403; }\n")
    f.write("if ($blocked_ua) { return 403; }\n")
    f.write("if ($blocked_query) { return 403; }\n")
    for h in headers:
        f.write(f"if ($http_{h.replace('-', '_')} ~ 1) {{ return 403; }}\n")
    f.write("limit_req zone=perip burst=100000 nodelay;\n")

# HAProxy: ACLs from files, and a stick table tracking the request rate per IP.
with open(os.path.join(out, "haproxy-ranges.txt"), "w") as f:
    f.write("\n".join(ranges) + "\n")
    for i in ips:
        for p in ("192.0.2", "198.51.100", "203.0.113"):
            f.write(f"{p}.{i}/32\n")
with open(os.path.join(out, "haproxy-ua.txt"), "w") as f:
    f.write("\n".join(uas) + "\n")
with open(os.path.join(out, "haproxy-paths.txt"), "w") as f:
    f.write("\n".join(f"/admin{p}/" for p in paths) + "\n")
with open(os.path.join(out, "haproxy-query.txt"), "w") as f:
    f.write("\n".join(queries) + "\n")
with open(os.path.join(out, "haproxy-frontend.cfg"), "w") as f:
    f.write(f"acl blocked_ip src -f {out}/haproxy-ranges.txt\n")
    f.write(f"    acl blocked_ua hdr_sub(user-agent) -f {out}/haproxy-ua.txt\n")
    f.write(f"    acl blocked_path path_beg -i -f {out}/haproxy-paths.txt\n")
    f.write(f"    acl blocked_query query -m sub -f {out}/haproxy-query.txt\n")
    for h in headers:
        f.write(f"    http-request deny if {{ req.hdr({h}) -m sub 1 }}\n")
    f.write("    http-request deny if blocked_ip or blocked_ua or blocked_path or blocked_query\n")
    f.write("    stick-table type ip size 1m expire 10s store http_req_rate(10s)\n")
    f.write("    http-request track-sc0 src\n")
    f.write("    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000 }\n")
