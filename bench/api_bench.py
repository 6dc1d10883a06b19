#!/usr/bin/env python3
"""The REST API under load: `wrk` against `regionmove serve` on loopback.

Starts the server on a fresh embedded config, creates an app with a table and a row, then runs
wrk (Debian package wrk) for a few seconds per case, 2 threads and 4 connections:
  - GET of one row, on kept-alive connections and with `Connection: close` (the peer: the same
    server, a connection per request);
  - POST of one row (the server gives it an id), likewise;
  - GET /healthz (no store, no database: the HTTP layer alone).
Then blob uploads and downloads (the server's RSS must stay flat), and the price of the migration
guard: POST row on a server started with REGIONMOVE_BENCH_UNGUARDED=1 (the guard skipped; for
this benchmark only) against the same with it, as the server's CPU per write (from /proc: a
write's time is mostly its commit's fsync, whose noise on this disk is larger than the guard's
price in requests/s). Prints requests/s and latency percentiles, then bench/run's rows; the
server's peak RSS is read from /proc.

  cmake --build build --target regionmove && python3 bench/api_bench.py [SECONDS]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "regionmove")
TOKEN = "bench-token-0123456789"


def call(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def wrk(url, seconds, close=False, post=None):
    args = ["wrk", "-t2", "-c4", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {TOKEN}"]
    if close:
        args += ["-H", "Connection: close"]
    script = None
    if post is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.body = \'%s\'\n'
                     'wrk.headers["Content-Type"] = "application/json"\n' % json.dumps(post))
        script.close()
        args += ["-s", script.name]
    out = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    pct = {}
    for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[p] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    return {"rps": rps, "requests": requests, "p50_ms": pct.get("50"), "p99_ms": pct.get("99"),
            "non_2xx": int(errors.group(1)) if errors else 0}


def start_server(config, env=None):
    """Starts `regionmove serve` on a free port; returns (process, base URL)."""
    server = subprocess.Popen([BIN, "serve", "--config", config, "--listen", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"serving on (http://[0-9.:]+)", server.stderr.readline())
        if m:
            # The server logs every request to stderr: drain it so it never blocks.
            subprocess.Popen(["cat"], stdin=server.stderr, stdout=subprocess.DEVNULL)
            return server, m.group(1)
    sys.exit("the server did not start")


def cpu_seconds(pid):
    """User and system CPU of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(pid, run):
    """Runs `run` (a wrk call) and adds the server's CPU microseconds per request to its result."""
    before = cpu_seconds(pid)
    r = run()
    r["cpu_us"] = 1e6 * (cpu_seconds(pid) - before) / max(1, r["requests"])
    return r


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def blob_case(base, app, work, pid, count=24, mib=50):
    """`count` uploads of a `mib` MiB blob (curl -T, one at a time), then as many downloads; the
    peer writes the same file as many times with cp and hashes each copy (what the server does:
    write, hash, fsync). The server's peak RSS must not grow with the blobs."""
    data = os.path.join(work, "blob.bin")
    with open(data, "wb") as f:
        f.write(os.urandom(mib << 20))
    auth = ["-H", f"Authorization: Bearer {TOKEN}"]
    start = time.monotonic()
    for i in range(count):
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-T", data, *auth,
                        f"{base}/v1/apps/{app}/blobs/big/{i}.bin"], check=True)
    put_s = time.monotonic() - start
    start = time.monotonic()
    for i in range(count):
        subprocess.run(["curl", "-sf", "-o", "/dev/null", *auth,
                        f"{base}/v1/apps/{app}/blobs/big/{i}.bin"], check=True)
    get_s = time.monotonic() - start
    start = time.monotonic()
    for i in range(count):
        copy = os.path.join(work, f"copy-{i}.bin")
        subprocess.run(f"cp '{data}' '{copy}' && sync '{copy}' && sha256sum '{copy}' >/dev/null",
                       shell=True, check=True)
    peer_s = time.monotonic() - start
    rss = peak_rss(pid)
    print(f"{count} x {mib} MiB blobs: PUT {put_s:.2f} s, GET {get_s:.2f} s "
          f"(cp + sync + sha256sum {peer_s:.2f} s); server peak RSS {rss:.1f} MiB")
    return [{"work": f"API blob PUT {count} x {mib} MiB, one at a time (server RSS flat)",
             "ours": put_s, "unit": "s", "peer": "cp + sync + sha256sum", "peer_value": peer_s,
             "ratio": put_s / peer_s, "rss_mib": rss, "target": "peak RSS < 200 MiB",
             "met": rss < 200},
            {"work": f"API blob GET {count} x {mib} MiB, one at a time",
             "ours": get_s, "unit": "s", "peer": "", "peer_value": None, "ratio": None,
             "rss_mib": rss, "target": "peak RSS < 200 MiB", "met": rss < 200}]


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: bash scripts/install-deps.sh --bench")
    work = tempfile.mkdtemp(prefix="regionmove-api-bench-")
    config = os.path.join(work, "regionmove.toml")
    toml = (f'[server]\ndata_dir = "var"\n[[users]]\nname = "alice"\ntoken = "{TOKEN}"\n')
    for slug in ("us-east-1", "eu-west-1"):
        toml += (f'[[regions]]\nslug = "{slug}"\n'
                 f'database = {{ engine = "sqlite", dir = "regions/{slug}/db" }}\n'
                 f'blobs = {{ engine = "fs", dir = "regions/{slug}/blobs" }}\n')
    with open(config, "w") as f:
        f.write(toml)
    server, base = start_server(config)
    try:
        app = call(base, "POST", "/v1/apps", {"name": "bench", "region": "us-east-1"})["app_id"]
        call(base, "POST", f"/v1/apps/{app}/tables",
             {"name": "orders", "columns": [{"name": "total", "type": "real"}]})
        call(base, "POST", f"/v1/apps/{app}/tables/orders", [{"id": "o1", "total": 1}])
        row = f"{base}/v1/apps/{app}/tables/orders/o1"
        table = f"{base}/v1/apps/{app}/tables/orders"
        cases = {
            "GET row": (row, None),
            "POST row": (table, {"total": 2.5}),
            "GET /healthz": (f"{base}/healthz", None),
        }
        results = {}
        print(f"{'case':<14} {'connections':<12} {'req/s':>9} {'p50':>9} {'p99':>9} {'non-2xx':>8}")
        for name, (url, post) in cases.items():
            for close in (False, True):
                r = wrk(url, seconds, close=close, post=post)
                results[(name, close)] = r
                print(f"{name:<14} {'close' if close else 'keep-alive':<12} {r['rps']:>9.0f} "
                      f"{r['p50_ms']:>7.2f}ms {r['p99_ms']:>7.2f}ms {r['non_2xx']:>8}", flush=True)
        rss = peak_rss(server.pid)
        print(f"peak RSS of the server: {rss:.1f} MiB")
        blob_rows = blob_case(base, app, work, server.pid)
        # The guard's price: POST row on this server and on one started with the guard off
        # (REGIONMOVE_BENCH_UNGUARDED=1) on the same data, in turns (five each): the server's
        # CPU per write, the median of each side; requests/s (the best of each side) for context.
        guarded, unguarded = [], []
        for _ in range(5):
            guarded.append(cpu_per_request(
                server.pid, lambda: wrk(table, seconds, post={"total": 2.5})))
            server.terminate()
            server.wait(timeout=30)
            server, base = start_server(config, {"REGIONMOVE_BENCH_UNGUARDED": "1"})
            url = f"{base}/v1/apps/{app}/tables/orders"
            unguarded.append(cpu_per_request(
                server.pid, lambda: wrk(url, seconds, post={"total": 2.5})))
            server.terminate()
            server.wait(timeout=30)
            server, base = start_server(config)
            table = f"{base}/v1/apps/{app}/tables/orders"
        median = lambda runs: sorted(r["cpu_us"] for r in runs)[len(runs) // 2]
        best = lambda runs: max(r["rps"] for r in runs)
        cost = median(guarded) / median(unguarded) - 1
        print(f"POST row with the guard {median(guarded):.0f} us of server CPU per write, without "
              f"{median(unguarded):.0f} us: the guard costs {100 * cost:.1f} % (best req/s "
              f"{best(guarded):.0f} with, {best(unguarded):.0f} without)")
        command = f"python3 bench/api_bench.py {seconds}"
        targets = {"GET row": 5000, "POST row": 2500, "GET /healthz": 5000}
        for name, floor in targets.items():
            keep, close = results[(name, False)], results[(name, True)]
            ok = keep["non_2xx"] == 0 and close["non_2xx"] == 0
            row_out = {"work": f"API {name}, 4 connections kept alive (p99 {keep['p99_ms']:.2f} ms)",
                       "command": command, "ours": keep["rps"], "unit": "req/s",
                       "peer": "the same, Connection: close", "peer_value": close["rps"],
                       "ratio": keep["rps"] / close["rps"] if close["rps"] else None,
                       "rss_mib": rss,
                       "target": f">= {floor} req/s, p99 < 5 ms, >= close",
                       "met": ok and keep["rps"] >= floor and keep["p99_ms"] < 5
                              and keep["rps"] >= close["rps"]}
            print("RESULT " + json.dumps(row_out), flush=True)
        blob_rows.append({
            "work": "API POST row with the migration guard: server CPU per write (its cost: "
                    f"{100 * cost:.1f} %; best {best(guarded):.0f} vs {best(unguarded):.0f} req/s)",
            "ours": median(guarded), "unit": "us", "peer": "the same without the guard",
            "peer_value": median(unguarded), "ratio": median(guarded) / median(unguarded),
            "rss_mib": rss, "target": "guard cost <= 3 %", "met": cost <= 0.03})
        for row_out in blob_rows:
            row_out["command"] = command
            print("RESULT " + json.dumps(row_out), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
