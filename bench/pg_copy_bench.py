#!/usr/bin/env python3
"""A PostgreSQL database copied between two clusters by regionmove and by its peers.

Builds a database of realistic entropy (random text, bytes and jsonb, a foreign key, three
secondary indexes) in the cluster on :54321 (scripts/pg-regions), then copies it to the cluster
on :54322 with, in one run:
  - pg_dump | psql                          (the reference platform's path)
  - pg_dump -Fd -j2 + pg_restore -j2
  - pgcopydb clone --table-jobs 2 --index-jobs 2   (Debian package pgcopydb)
  - regionmove (build/regionmove_pg_bench): schema sections, parallel binary COPY, sequences,
    post-data, then its verification of both sides (row counts, row checksums, sequences,
    schema), reported apart and in the total.
Prints the times and the ratios to regionmove's copy + verify.

  scripts/pg-regions start && cmake --build build --target regionmove_pg_bench
  python3 bench/pg_copy_bench.py [ORDERS_ROWS]     (default 3000000: about 1 GiB)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SRC = "host=127.0.0.1 port=54321 user=postgres"
DST = "host=127.0.0.1 port=54322 user=postgres"
DB = "bench_app"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def psql(conn, sql, db="postgres"):
    return subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-d",
                           f"{conn} dbname={db}", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def recreate(conn):
    psql(conn, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    psql(conn, f"CREATE DATABASE {DB}")


def build(rows):
    recreate(SRC)
    customers = max(rows // 10, 1)
    psql(SRC, f"""
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
  profile jsonb, created timestamptz NOT NULL);
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id), note text, payload bytea,
  attrs jsonb, amount numeric(12, 2), created timestamptz NOT NULL);
INSERT INTO customers SELECT i, md5(random()::text), md5(random()::text) || '@example.com',
  jsonb_build_object('plan', md5(random()::text), 'score', random() * 1000,
                     'tags', jsonb_build_array(md5(random()::text), md5(random()::text))),
  now() - random() * interval '900 days'
  FROM generate_series(1, {customers}) i;
INSERT INTO orders (customer_id, note, payload, attrs, amount, created)
  SELECT 1 + (random() * ({customers} - 1))::bigint,
    md5(random()::text) || ' ' || md5(random()::text) || ' ' || md5(random()::text),
    decode(md5(random()::text) || md5(random()::text) || md5(random()::text)
           || md5(random()::text), 'hex'),
    jsonb_build_object('sku', md5(random()::text), 'qty', (random() * 20)::int,
                       'gift', random() < 0.1),
    round((random() * 1000)::numeric, 2), now() - random() * interval '900 days'
  FROM generate_series(1, {rows}) i;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_created ON orders (created);
CREATE INDEX customers_email ON customers (email);
""", DB)
    psql(SRC, "VACUUM ANALYZE", DB)
    return int(psql(SRC, f"SELECT pg_database_size('{DB}')"))


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def run(cmd, **kw):
    subprocess.run(cmd, check=True, shell=isinstance(cmd, str), **kw)


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
    bench = os.path.join(ROOT, "build", "regionmove_pg_bench")
    if not os.path.exists(bench):
        sys.exit("build it first: cmake --build build --target regionmove_pg_bench")
    size = build(rows)
    print(f"data: {rows} orders, {rows // 10} customers, database {size / 2**20:.0f} MiB")
    work = tempfile.mkdtemp(prefix="rm-pgbench-")
    results = {}
    try:
        recreate(DST)
        results["pg_dump | psql"] = timed(lambda: run(
            f"pg_dump -d '{SRC} dbname={DB}' | psql -X -q -v ON_ERROR_STOP=1 -d '{DST} dbname={DB}'",
            stdout=subprocess.DEVNULL))
        recreate(DST)
        dump_dir = os.path.join(work, "fd")
        results["pg_dump -Fd -j2 + pg_restore -j2"] = timed(lambda: (
            run(["pg_dump", "-Fd", "-j2", "-f", dump_dir, "-d", f"{SRC} dbname={DB}"]),
            run(["pg_restore", "-j2", "-d", f"{DST} dbname={DB}", dump_dir])))
        recreate(DST)
        results["pgcopydb clone (2+2 jobs)"] = timed(lambda: run(
            ["pgcopydb", "clone", "--source", f"{SRC} dbname={DB}", "--target",
             f"{DST} dbname={DB}", "--table-jobs", "2", "--index-jobs", "2",
             "--dir", os.path.join(work, "pgcopydb")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        psql(DST, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        # Under /usr/bin/time for regionmove's peak RSS (the last line of its stderr).
        timer = ["/usr/bin/time", "-f", "%M"] if os.path.exists("/usr/bin/time") else []
        done = subprocess.run(timer + [bench, f"{SRC} dbname=postgres", f"{DST} dbname=postgres",
                                       DB, work], check=True, capture_output=True, text=True)
        rm = json.loads(done.stdout)
        rss_mib = int(done.stderr.strip().splitlines()[-1]) / 1024 if timer else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        psql(DST, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    ours = rm["copy_s"] + rm["verify_s"]
    print(f"{'copy':44s} {'seconds':>8s} {'regionmove / it':>16s}")
    for name, secs in results.items():
        print(f"{name:44s} {secs:8.2f} {ours / secs:15.2f}x")
    print(f"{'regionmove copy':44s} {rm['copy_s']:8.2f}")
    print(f"{'regionmove verify (both sides)':44s} {rm['verify_s']:8.2f}")
    print(f"{'regionmove copy + verify':44s} {ours:8.2f} {1.0:15.2f}x")
    # bench/run's rows: regionmove's copy and verification against each peer's copy alone.
    for name, secs in results.items():
        print("RESULT " + json.dumps({
            "work": f"PostgreSQL {size / 2**20:.0f} MiB: copy+verify",
            "command": f"python3 bench/pg_copy_bench.py {rows}", "ours": ours, "unit": "s",
            "peer": name, "peer_value": secs, "ratio": ours / secs, "rss_mib": rss_mib,
            "target": "ratio <= 1.0", "met": ours <= secs}))


if __name__ == "__main__":
    main()
