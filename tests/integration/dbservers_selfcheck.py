#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Self-check of dbservers.py (not a ctest test; run as root: /usr/bin/python3 this file).

Starts PostgreSQL, MariaDB and Redis, drives each once with small counts, checks every
client's result against the server's own counters (pg_stat_statements, SHOW GLOBAL STATUS,
INFO commandstats), stops them, and checks that no process it started is left and that the
temporary directories are gone. Exit 0 when all is well.
"""
import collections
import io
import os
import sys
import time

import dbservers
from dbservers import Mariadb, Postgres, Redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts", "pylib"))
from loopback import Procs  # noqa: E402

failures = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        failures.append(what)


def timed(label, fn):
    t0 = time.monotonic()
    out = fn()
    print(f"{label}: {time.monotonic() - t0:.2f}s")
    return out


def postgres_part(pg):
    print(f"== PostgreSQL on 127.0.0.1:{pg.port} ({pg.dsn})")
    pg.psql(dbservers.PGBENCH_SCRIPT_SCHEMA, user="app")
    script = dbservers.PGBENCH_SCRIPT
    print("  script statements:", dbservers.pgbench_script_statements(script))
    want = collections.Counter()
    for proto in ("simple", "extended", "prepared"):
        r = timed(f"  pgbench -M {proto} -t 20 -c 2",
                  lambda: pg.pgbench(20, 2, proto, script=script))
        check(r["processed"] == 40 and r["failed"] == 0,
              f"pgbench {proto}: processed {r['processed']}/{r['planned']}")
        sent = dbservers.pgbench_script_counts(script, 20, 2)
        if proto == "prepared":  # pg_stat_statements (PG 15) counts a prepared utility
            for k in sent:       # statement (BEGIN/END) at its first execution only
                if k[1] is None:
                    sent[k] = 2
        want += sent
    got = pg.statement_counts()
    print("  pg_stat_statements (app):", dict(got))
    check(all(got[k] == v for k, v in want.items()),
          f"pg_stat_statements equals pgbench_script_counts x3 {dict(want)}")

    timed("  pgbench_init(1)", lambda: pg.pgbench_init(1))
    pg.reset_statements()
    r = pg.pgbench(10, 1, "simple")  # built-in tpcb-like
    got = pg.statement_counts()
    check(r["processed"] == 10 and got[("UPDATE", "pgbench_accounts")] == 10
          and got[("SELECT", "pgbench_branches")] == 1,
          f"built-in tpcb-like -t 10: {dict(got)}")

    import psycopg2  # noqa: PLC0415
    pg.reset_statements()
    conn = pg.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
    cur.execute("INSERT INTO items VALUES (%s, %s)", (1, "a"))
    conn.commit()
    errors = []
    for bad in ("INSERT INTO items VALUES (1, 'dup')", "SELEC 1"):
        try:
            cur.execute(bad)
        except psycopg2.Error as e:
            errors.append(e.pgcode)
            conn.rollback()
    cur.copy_expert("COPY items FROM STDIN",
                    io.StringIO("".join(f"{i}\tn{i}\n" for i in range(100, 110))))
    conn.commit()
    t0 = time.monotonic()
    cur.execute("SELECT pg_sleep(1.2)")
    slept = time.monotonic() - t0
    conn.commit()
    conn.close()
    print(f"  psycopg2: errors {errors}, pg_sleep took {slept:.2f}s")
    check(errors == ["23505", "42601"], "psycopg2 unique violation 23505, syntax error 42601")
    stm = {s["query"]: s for s in pg.statements()}
    print("  pg_stat_statements (app):",
          {q: (s["calls"], s["rows"]) for q, s in stm.items()})
    check(stm.get("COPY items FROM STDIN", {}).get("rows") == 10, "COPY of 10 rows counted")
    check(stm.get("BEGIN", {}).get("calls") == 5 and stm.get("ROLLBACK", {}).get("calls") == 2,
          "psycopg2 sent BEGIN x5 (one per transaction), ROLLBACK x2")
    pg.wait_idle()
    print("  pg_stat_user_tables:", pg.table_stats())
    print("  pg_stat_database:", pg.db_stats())


def mariadb_part(my):
    print(f"== MariaDB on 127.0.0.1:{my.port}")
    import pymysql  # noqa: PLC0415
    s0 = my.status()
    conn = my.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(40))")
    cur.execute("INSERT INTO orders VALUES (%s, %s)", (1, "a"))
    cur.execute("SELECT item FROM orders WHERE id = %s", (1,))
    row = cur.fetchone()
    errors = []
    for bad in ("INSERT INTO orders VALUES (1, 'dup')", "SELEC 1"):
        try:
            cur.execute(bad)
        except pymysql.MySQLError as e:
            errors.append(e.args[0])
    conn.close()
    s1 = my.status()
    print(f"  pymysql: row {row}, errors {errors}")
    check(row == ("a",) and errors == [1062, 1064], "pymysql duplicate key 1062, syntax 1064")
    d = {k: s1[k] - s0[k] for k in ("Com_insert", "Com_select", "Com_create_table")}
    check(d == {"Com_insert": 2, "Com_select": 1, "Com_create_table": 1}, f"Com_* moved {d}")

    r = timed("  run_prepared(5, duplicate=True)", lambda: my.run_prepared(5, duplicate=True))
    s2 = my.status()
    print("  prepared:", r)
    d = {k: s2[k] - s1[k] for k in ("Com_stmt_prepare", "Com_stmt_execute", "Com_stmt_reset",
                                    "Com_stmt_close")}
    check(d == {"Com_stmt_prepare": 2, "Com_stmt_execute": 11, "Com_stmt_reset": 1,
                "Com_stmt_close": 2},
          f"server-side prepared statements: {d}")
    check(r["execute_insert"] == 6 and r["errors"] == 1, "prepared duplicate INSERT failed")


def redis_part(rd):
    print(f"== Redis on 127.0.0.1:{rd.port}")
    rd.reset_stats()
    for p in (1, 8):
        r = timed(f"  redis-benchmark -n 200 -c 2 -P {p} -t set,get,incr,lpush",
                  lambda: rd.benchmark(["set", "get", "incr", "lpush"], 200, 2, p))
        print("   ", r["commands"], "connections", r["connections"])
        check(r["commands"] == {"set": 200, "get": 200, "incr": 200, "lpush": 200,
                                "config|get": 2} and r["connections"] == 9,
              f"redis-benchmark -P {p}: 200 of each, config|get 2, 9 connections")
    before, c0 = rd.commandstats(), rd.connections()
    failed0 = rd.commandstats("failed_calls")
    res = rd.multi_exec_wrongtype()
    after, c1 = rd.commandstats(), rd.connections()
    failed1 = rd.commandstats("failed_calls")
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0)
             != before.get(k, 0)}
    print("  MULTI/EXEC:", res, delta)
    check("WRONGTYPE" in str(res[1]) and res[0] is True and isinstance(res[2], int),
          "EXEC reply: OK, WRONGTYPE, integer")
    check(delta == {"set": 2, "multi": 1, "lpush": 1, "incrby": 1, "exec": 1} and c1 - c0 == 1,
          "commandstats moved by set 2, multi, lpush, incrby, exec; 1 connection")
    check(failed1.get("lpush", 0) - failed0.get("lpush", 0) == 1, "lpush failed_calls +1")


def main():
    if os.geteuid() != 0:
        sys.exit("run as root")
    t_all = time.monotonic()
    procs = Procs()
    servers = []
    pids = set()
    try:
        for cls, kw in ((Postgres, {"log_statements": True}), (Mariadb, {}), (Redis, {})):
            s = cls(procs, **kw)
            servers.append(s)
            s.start()
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in s.start_phases.items())
            print(f"start {cls.NAME}: {s.start_seconds:.2f}s ({parts}; port {s.port})")
        postgres_part(servers[0])
        mariadb_part(servers[1])
        redis_part(servers[2])
        for s in servers:
            pids.update((p, dbservers._proc_stat(p)[1]) for p in s.pids())
    finally:
        dirs = [s.dir for s in servers]
        for s in servers:
            t0 = time.monotonic()
            s.stop()
            print(f"stop {s.NAME}: {time.monotonic() - t0:.2f}s")
        procs.stop_all()
    left = [p for p, started in pids if dbservers._alive(p, started)]
    check(not left, f"no process left of {sorted(p for p, _ in pids)}")
    check(not any(d and os.path.exists(d) for d in dirs), f"temporary directories gone {dirs}")
    print(f"total {time.monotonic() - t_all:.1f}s; "
          + ("ALL OK" if not failures else f"{len(failures)} FAILED: {failures}"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
