#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Databases and caches from the same capture, against real servers and clients (loopback):
PostgreSQL 15 (pgbench in the simple, extended and prepared protocols; psycopg2 with a unique
violation, a syntax error, COPY and a slow pg_sleep), MariaDB (pymysql, and server-side
prepared statements through DBD::MariaDB), Redis (redis-benchmark plain and pipelined,
redis-py MULTI/EXEC with an error inside). The operations redtap reports per (system,
operation, collection, error) equal what the clients did, exactly; durations nest inside the
client's own measure; a 1.2 s statement is slow; card numbers and e-mail addresses in SQL and
Redis values never appear in events, metrics, the API or the agent's log. Also: a pgbench
connection opened before the agent (found on a hinted port mid-stream, its statements
prepared unseen: EXECUTE), and alerts.pools' pool usage on the real PostgreSQL pool.
"""
import calendar
import collections
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

from harness import Agent, Scenario, find_redtap, require_bpf, wait_for

import dbservers
from dbservers import Mariadb, Postgres, Redis

REDTAP = find_redtap()
CARD = "4111111111111111"
CARD_SPACED = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
SECRETS = (CARD, CARD_SPACED, "4111-1111", EMAIL, "jane.doe")

PG_TXNS, PG_CLIENTS = 20, 2


def ts_of(event):
    """Unix seconds of an event's timestamp (RFC 3339, UTC, microseconds)."""
    t = event["timestamp"]
    base, frac = t[:19], t[20:-1]
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1e6


def key(e):
    return (e["db.operation.name"], e.get("db.collection.name", ""),
            e.get("db.response.status_code", ""))


class Databases(Scenario):
    PREFIX = "redtap-it-db-"

    @classmethod
    def _run(cls):
        cls.pg = Postgres(cls.procs)
        cls.my = Mariadb(cls.procs)
        cls.rd = Redis(cls.procs)
        dbservers.start_all(cls.pg, cls.my, cls.rd)
        cls.pg.psql(dbservers.PGBENCH_SCRIPT_SCHEMA, user="app")
        cls.pg.pgbench_init(scale=1)
        cfg = os.path.join(cls.tmp, "redtap.yaml")
        with open(cfg, "w") as f:
            f.write(f"""db:
  ports:
    postgresql: [{cls.pg.port}]
    mysql: [{cls.my.port}]
    redis: [{cls.rd.port}]
  slow_threshold: 1s
alerts:
  pools:
    - {{name: pg, service: pgbench, server_port: {cls.pg.port}, size: 8}}
""")
        # A pgbench connection opened before the agent, its statements prepared unseen.
        env = dict(os.environ, PGPASSWORD=cls.pg.password)
        early = subprocess.Popen(
            [os.path.join(cls.pg.bindir, "pgbench"), "-n", "-h", "127.0.0.1", "-p",
             str(cls.pg.port), "-U", cls.pg.user, "-M", "prepared", "-c", "1", "-j", "1",
             "-T", "7", "-S", cls.pg.dbname],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)
        cls.agent = Agent(REDTAP, cls.tmp, cls.procs, ["--config", cfg])
        cls.agent.start()
        cls.t_agent = time.time()
        cls.start_prometheus()
        # Its pool, scraped while it runs: one established pgbench connection to the port.
        cls.pool_seen = wait_for(lambda: cls.metric_value(
            'redtap_connection_pool_connections{pool="pg"}') == 1, timeout=4)
        cls.pool_ratio = cls.metric_value('redtap_connection_pool_usage_ratio{pool="pg"}')

        cls.mariadb_part()
        cls.redis_part()
        early.wait(timeout=30)
        cls.early_out = early.stdout.read()
        cls.t_split = time.time()
        cls.pgbench_part()
        cls.psycopg_part()
        time.sleep(1.5)  # the reader drains every poll interval
        time.sleep(2.5)  # two more scrapes of the last counts
        cls.dashboard_empty = cls.check_dashboard()
        cls.metrics = cls.scrape("/metrics")
        cls.databases = json.loads(cls.scrape("/api/v1/databases"))
        cls.rc, _ = cls.agent.stop()
        cls.log = cls.agent.read_log()
        cls.events = cls.agent.read_events("db")
        with open(cls.agent.events) as f:
            cls.events_text = f.read()

    # ---- helpers ----------------------------------------------------------------------------

    @classmethod
    def start_prometheus(cls):
        """A real Prometheus scraping the agent every second, for the dashboard check."""
        from harness import free_port, wait_port  # noqa: PLC0415
        cls.prom_port = free_port()
        conf = os.path.join(cls.tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: redtap
    static_configs: [{{targets: ["127.0.0.1:{cls.agent.http_port}"]}}]
""")
        log = open(os.path.join(cls.tmp, "prometheus.log"), "w")
        cls.procs.start(["prometheus", f"--config.file={conf}",
                         f"--storage.tsdb.path={cls.tmp}/prom-data",
                         f"--web.listen-address=127.0.0.1:{cls.prom_port}"],
                        stdout=log, stderr=log)
        wait_port(cls.prom_port, timeout=30)

    @classmethod
    def check_dashboard(cls):
        """Every query of deploy/grafana/redtap-databases.json returns data from the real
        Prometheus (template variables: every value). Returns the panels without data."""
        import urllib.parse  # noqa: PLC0415
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        with open(os.path.join(root, "deploy", "grafana", "redtap-databases.json")) as f:
            board = json.load(f)
        empty = []
        for p in board["panels"]:
            for t in p["targets"]:
                q = t["expr"].replace("$__rate_interval", "1m").replace("$service", ".*")
                url = (f"http://127.0.0.1:{cls.prom_port}/api/v1/query?query=" +
                       urllib.parse.quote(q))
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        res = json.loads(r.read())
                    ok = res["status"] == "success" and res["data"]["result"]
                except Exception as e:  # noqa: BLE001 (reported as the panel's failure)
                    ok = False
                    q += f" ({e})"
                if not ok:
                    empty.append(f"{p['title']}: {q}")
        return empty

    @classmethod
    def scrape(cls, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{cls.agent.http_port}{path}",
                                    timeout=5) as r:
            return r.read().decode()

    @classmethod
    def metric_value(cls, series):
        for line in cls.scrape("/metrics").splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return None

    def of(self, system, command, t0=None, t1=None):
        out = []
        for e in self.events:
            if e["db.system.name"] != system or e["process.command"] != command:
                continue
            t = ts_of(e)
            if (t0 is None or t >= t0) and (t1 is None or t < t1):
                out.append(e)
        return out

    def counts(self, events):
        return collections.Counter(key(e) for e in events)

    # ---- PostgreSQL -------------------------------------------------------------------------

    @classmethod
    def pgbench_part(cls):
        cls.pgbench_windows = {}
        for protocol in ("simple", "extended", "prepared"):
            t0 = time.time()
            res = cls.pg.pgbench(PG_TXNS, PG_CLIENTS, protocol, script=dbservers.PGBENCH_SCRIPT)
            cls.pgbench_windows[protocol] = (t0, time.time(), res)

    @classmethod
    def psycopg_part(cls):
        import psycopg2  # noqa: PLC0415
        c = cls.pg.connect()
        cur = c.cursor()
        cur.execute("CREATE TABLE customers (id int PRIMARY KEY, email text, card text)")
        c.commit()
        cur.execute("INSERT INTO customers VALUES (%s, %s, %s)", (1, EMAIL, CARD_SPACED))
        c.commit()
        try:
            cur.execute("INSERT INTO customers VALUES (%s, %s, %s)", (1, EMAIL, CARD))
        except psycopg2.errors.UniqueViolation:
            c.rollback()
        try:
            cur.execute("SELEC email FROM customers")
        except psycopg2.errors.SyntaxError:
            c.rollback()
        rows = "".join(f"{i}\tuser{i}@example.com\t{CARD}\n" for i in range(10, 20))
        import io  # noqa: PLC0415
        cur.copy_expert("COPY customers FROM STDIN", io.StringIO(rows))
        c.commit()
        t0 = time.monotonic()
        cur.execute("SELECT pg_sleep(1.2)")
        cls.sleep_client_s = time.monotonic() - t0
        c.commit()
        # A result far larger than what one read captures (libpq reads 16 KiB at a time, 4 KiB
        # of each is captured): the reply's end is found again past the uncaptured bytes.
        cur.execute("SELECT repeat('x', 1000) FROM generate_series(1, 300)")
        cls.big_rows = len(cur.fetchall())
        c.commit()
        c.close()

    def test_pgbench_counts_are_exact_in_every_protocol(self):
        script = dbservers.PGBENCH_SCRIPT
        for protocol, (t0, t1, res) in self.pgbench_windows.items():
            with self.subTest(protocol=protocol):
                self.assertEqual(res["processed"], PG_TXNS * PG_CLIENTS)
                got = self.counts(self.of("postgresql", "pgbench", t0, t1))
                n = PG_TXNS * PG_CLIENTS
                want = collections.Counter({
                    ("BEGIN", "", ""): n, ("INSERT", "orders", ""): n,
                    ("UPDATE", "stock", ""): n, ("SELECT", "stock", ""): n,
                    ("SELECT", "orders", ""): n, ("COMMIT", "", ""): n})
                self.assertEqual(got, want, script)
                evs = self.of("postgresql", "pgbench", t0, t1)
                self.assertTrue(all(e["duration_ms"] > 0 for e in evs))
                self.assertTrue(all(e["server.port"] == self.pg.port for e in evs))
                prepared = [e for e in evs if e.get("db.prepared")]
                if protocol == "prepared":
                    self.assertEqual(len(prepared), 6 * n)
                else:
                    self.assertEqual(prepared, [])
                # The text has the placeholders of pgbench's variables or '?', never a value.
                inserts = [e["db.query.text"] for e in evs if e["db.operation.name"] == "INSERT"]
                self.assertTrue(all("VALUES (?, " in q or "VALUES ($1" in q or "VALUES (?," in q
                                    for q in inserts), inserts[:3])

    def test_pgbench_metrics_match_the_events(self):
        n = 3 * PG_TXNS * PG_CLIENTS
        for op, coll in (("INSERT", "orders"), ("UPDATE", "stock"), ("SELECT", "stock")):
            series = ('db_client_operation_duration_seconds_count{service_name="pgbench",'
                      f'db_system_name="postgresql",db_operation_name="{op}",'
                      f'db_collection_name="{coll}",server_address="127.0.0.1",'
                      f'server_port="{self.pg.port}",error_type=""}} {n}')
            self.assertIn(series, self.metrics)

    def test_psycopg2_errors_copy_and_slow(self):
        got = self.counts(self.of("postgresql", "python3"))
        want = collections.Counter({
            ("CREATE", "customers", ""): 1, ("INSERT", "customers", ""): 1,
            ("INSERT", "customers", "23505"): 1, ("QUERY", "", "42601"): 1,
            ("COPY", "customers", ""): 1, ("SELECT", "", ""): 2,
            ("BEGIN", "", ""): 7, ("COMMIT", "", ""): 5, ("ROLLBACK", "", ""): 2})
        self.assertEqual(got, want)
        evs = self.of("postgresql", "python3")
        dup = [e for e in evs if e.get("db.response.status_code") == "23505"][0]
        self.assertEqual(dup["level"], "ERROR")
        self.assertEqual(dup["error.type"], "23")
        slow = [e for e in evs if e["db.query.summary"] == "SELECT" and
                e.get("duration_ms", 0) > 1000][0]
        self.assertEqual(slow["level"], "WARN")
        self.assertGreaterEqual(slow["duration_ms"], 1200)
        self.assertLessEqual(slow["duration_ms"] / 1000, self.sleep_client_s)
        self.assertEqual(self.big_rows, 300)
        big = [e for e in evs if "repeat" in e.get("db.query.text", "")]
        self.assertEqual(len(big), 1)
        self.assertEqual(big[0]["level"], "INFO", big[0])  # replied, no error
        self.assertGreater(big[0]["duration_ms"], 0)
        self.assertIn('redtap_db_slow_operations_total{service_name="python3",'
                      'db_system_name="postgresql",db_operation_name="SELECT"} 1', self.metrics)

    def test_connection_older_than_the_agent_is_found_mid_stream(self):
        self.assertIn("number of transactions actually processed", self.early_out)
        evs = self.of("postgresql", "pgbench", None, self.t_split)
        self.assertGreater(len(evs), 10)
        # Prepared before the agent: each execution is reported, as EXECUTE (never invented).
        self.assertEqual({e["db.operation.name"] for e in evs}, {"EXECUTE"}, evs[:2])
        self.assertTrue(all(e["db.prepared"] and e["duration_ms"] > 0 for e in evs))
        self.assertTrue(all(e.get("db.response.status_code", "") == "" for e in evs))

    def test_pool_usage_on_the_real_pool(self):
        self.assertTrue(self.pool_seen, "redtap_connection_pool_connections{pool=\"pg\"} != 1")
        self.assertAlmostEqual(self.pool_ratio, 1 / 8)

    # ---- MariaDB ----------------------------------------------------------------------------

    @classmethod
    def mariadb_part(cls):
        import pymysql  # noqa: PLC0415
        c = cls.my.connect()
        cur = c.cursor()
        cur.execute("CREATE TABLE items (id int PRIMARY KEY, email varchar(64), card varchar(32))")
        for i in range(5):
            cur.execute("INSERT INTO items VALUES (%s, %s, %s)", (i, EMAIL, CARD))
        for i in range(5):
            cur.execute("SELECT email, card FROM items WHERE id = %s", (i,))
            cur.fetchall()
        # A result set far larger than the capture cap: framing kept across uncaptured bytes.
        cur.execute("SELECT REPEAT('x', 200000) FROM items")
        cur.fetchall()
        try:
            cur.execute("INSERT INTO items VALUES (%s, %s, %s)", (1, EMAIL, CARD))
        except pymysql.err.IntegrityError:
            pass
        try:
            cur.execute("SELEC * FROM items")
        except pymysql.err.ProgrammingError:
            pass
        c.close()
        cls.prepared = cls.my.run_prepared(10)

    def test_mariadb_text_protocol(self):
        got = self.counts(self.of("mysql", "python3"))
        want = collections.Counter({
            ("CREATE", "items", ""): 1, ("INSERT", "items", ""): 5, ("SELECT", "items", ""): 6,
            ("INSERT", "items", "1062"): 1, ("QUERY", "", "1064"): 1})
        self.assertEqual(got, want)

    def test_mariadb_prepared_statements(self):
        # DBD::MariaDB: 4 SETs at connect, COM_STMT_PREPARE x2 (reported as PREPARE with the
        # statement's table), one COM_STMT_EXECUTE per execution (the prepared statement's
        # operation, db.prepared), COM_STMT_CLOSE and COM_QUIT (no reply: not operations).
        got = self.counts(self.of("mysql", "perl"))
        want = collections.Counter({
            ("SET", "", ""): len(dbservers.MARIADB_DBD_CONNECT_QUERIES),
            ("PREPARE", "ps_orders", ""): 2,
            ("INSERT", "ps_orders", ""): 10, ("SELECT", "ps_orders", ""): 10})
        self.assertEqual(got, want)
        prepared = [e for e in self.of("mysql", "perl") if e.get("db.prepared")]
        self.assertEqual(len(prepared), 20)
        self.assertTrue(all(e["duration_ms"] > 0 for e in prepared))

    # ---- Redis ------------------------------------------------------------------------------

    @classmethod
    def redis_part(cls):
        cls.bench = []
        for pipeline in (1, 8):
            t0 = time.time()
            res = cls.rd.benchmark(("set", "get", "incr", "lpush"), n=200, clients=2,
                                   pipeline=pipeline)
            cls.bench.append((t0, time.time(), res))
        r = cls.rd.connect()
        r.set(f"user:{EMAIL}", CARD)
        r.get(f"user:{EMAIL}")
        cls.tx = cls.rd.multi_exec_wrongtype()
        r.close()

    def test_redis_benchmark_counts_are_exact(self):
        for t0, t1, res in self.bench:
            got = collections.Counter(e["db.operation.name"]
                                      for e in self.of("redis", "redis-benchmark", t0, t1))
            want = collections.Counter()
            for cmd, calls in res["commands"].items():
                # INFO commandstats' "config|get" is the container command and its subcommand.
                want[cmd.replace("|", " ").upper()] += calls
            self.assertEqual(got, want)

    def test_redis_transaction_and_errors(self):
        evs = self.of("redis", "python3")
        ops = [e["db.operation.name"] for e in evs]
        self.assertEqual(ops[:2], ["SET", "GET"])
        self.assertEqual(ops.count("MULTI"), 1)
        self.assertEqual(ops.count("EXEC"), 1)
        errors = [e for e in evs if e.get("db.response.status_code")]
        self.assertEqual([e["db.response.status_code"] for e in errors], ["WRONGTYPE"])
        self.assertEqual(errors[0]["error.type"], "WRONGTYPE")
        self.assertEqual(evs[0]["db.query.text"], "SET ? ?")

    # ---- everything -------------------------------------------------------------------------

    def test_no_secret_leaves_the_host(self):
        for where, text in (("events", self.events_text), ("metrics", self.metrics),
                            ("api", json.dumps(self.databases)), ("log", self.log)):
            for s in SECRETS:
                self.assertNotIn(s, text, f"{s!r} in the {where}")

    def test_agent_accounting(self):
        self.assertEqual(self.rc, 0)
        db_total = self.metric_series_value("redtap_agent_db_operations_total")
        self.assertGreaterEqual(db_total, len(self.events))
        self.assertGreater(self.metric_series_value(
            'redtap_agent_db_connections_total{outcome="server_side_skipped"}'), 0)
        self.assertEqual(self.metric_series_value(
            'redtap_agent_db_connections_total{outcome="invalid"}'), 0)
        systems = {r["db_system"] for r in self.databases}
        self.assertEqual(systems, {"postgresql", "mysql", "redis"})

    def test_databases_dashboard_has_data(self):
        self.assertEqual(self.dashboard_empty, [], "panels without data")

    def metric_series_value(self, series):
        for line in self.metrics.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        self.fail(f"{series} not in /metrics")


class PostgresOverTls(Scenario):
    """psycopg2 with sslmode=require to a PostgreSQL serving TLS: the StartupMessage and every
    statement travel inside TLS; the OpenSSL probes' plaintext reaches the same parser (on a
    port that is not a hint: the plaintext startup opens it)."""
    PREFIX = "redtap-it-dbtls-"

    @classmethod
    def _run(cls):
        import pwd  # noqa: PLC0415
        tls = os.path.join(cls.tmp, "tls")
        os.makedirs(tls)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        os.path.join(tls, "key.pem"), "-out", os.path.join(tls, "cert.pem"),
                        "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
        pw = pwd.getpwnam("postgres")
        for name in ("", "key.pem", "cert.pem"):
            os.chown(os.path.join(tls, name), pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(tls, "key.pem"), 0o600)
        cls.pg = Postgres(cls.procs, sslmode="require", settings={
            "ssl": "on", "ssl_cert_file": os.path.join(tls, "cert.pem"),
            "ssl_key_file": os.path.join(tls, "key.pem")})
        cls.pg.start()
        cls.agent = Agent(REDTAP, cls.tmp, cls.procs)
        cls.agent.start()
        c = cls.pg.connect()
        cur = c.cursor()
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        cls.ssl_used = cur.fetchone()[0]
        cur.execute("CREATE TABLE cards (id int PRIMARY KEY, pan text)")
        cur.execute("INSERT INTO cards VALUES (1, %s)", (CARD,))
        c.commit()
        c.close()
        time.sleep(1.5)
        cls.rc, _ = cls.agent.stop()
        cls.events = [e for e in cls.agent.read_events("db")
                      if e["server.port"] == cls.pg.port]
        with open(cls.agent.events) as f:
            cls.events_text = f.read()
        cls.pg.stop()

    def test_statements_inside_tls_are_parsed(self):
        self.assertTrue(self.ssl_used, "the connection did not use TLS")
        got = collections.Counter(key(e) for e in self.events)
        self.assertEqual(got, collections.Counter({
            ("BEGIN", "", ""): 1, ("SELECT", "pg_stat_ssl", ""): 1, ("CREATE", "cards", ""): 1,
            ("INSERT", "cards", ""): 1, ("COMMIT", "", ""): 1}))
        self.assertTrue(all(e.get("tls") is True for e in self.events))
        self.assertTrue(all(e["process.command"] == "python3" for e in self.events))
        self.assertNotIn(CARD, self.events_text)
        self.assertEqual(self.rc, 0)


if __name__ == "__main__":
    require_bpf()
    unittest.main(verbosity=2)
