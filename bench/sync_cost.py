#!/usr/bin/env python3
"""What synchronous=FULL costs over NORMAL on this disk: single-row commits in WAL mode, as the
app data API makes them. Uses the same SQLite library as regionmove (Debian's libsqlite3).
Run: python3 bench/sync_cost.py [DIR]"""
import os, sqlite3, sys, tempfile, time

d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(dir=".")
rates = {}
for mode in ("NORMAL", "FULL"):
    path = os.path.join(d, f"sync_{mode}.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute(f"PRAGMA synchronous={mode}")
    c.execute("CREATE TABLE IF NOT EXISTS t(id TEXT PRIMARY KEY, v TEXT)")
    n = 2000
    t = time.time()
    for i in range(n):
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT OR REPLACE INTO t VALUES(?,?)", (str(i), "x" * 200))
        c.execute("COMMIT")
    dt = time.time() - t
    rates[mode] = n / dt
    print(f"{mode:6} {n / dt:8.0f} commits/s  {dt / n * 1e6:6.0f} us/commit")
    c.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
print(f"FULL/NORMAL time per commit: {rates['NORMAL'] / rates['FULL']:.1f}x")
