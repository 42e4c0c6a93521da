# SPDX-License-Identifier: Apache-2.0
"""Real database/cache servers for the integration tests, and the clients that drive them.

PostgreSQL (`Postgres`), MariaDB (`Mariadb`) and Redis (`Redis`), each started in the
foreground as a child process of the test (no systemd, no init scripts), in a fresh temporary
directory, listening on a free 127.0.0.1 TCP port, and stopped by PID with the directory
removed. A failed start raises RuntimeError with the tail of the daemon's log.

    procs = Procs()
    pg = Postgres(procs).start()          # or: with Postgres(procs) as pg: ...
    try:
        ...
    finally:
        pg.stop()                         # idempotent; procs.stop_all() also stops it

Clean TCP: everything the fixtures do themselves (readiness checks, setup SQL, ground-truth
queries, Redis INFO) goes over the server's unix socket in the temporary directory, and
readiness is read from /proc/net/tcp without connecting, so the only TCP traffic on `.port`
is what the test's clients send.

What each client sends besides the test's own statements (verified with log_statement=all,
the MariaDB general log, and tcpdump on loopback; PostgreSQL 15.20, MariaDB 10.11, Redis
7.0.15, psycopg2 2.9.5, pymysql 1.0.2, redis-py 4.3.4, DBD::MariaDB 1.22):

PostgreSQL (libpq: pgbench, psql, psycopg2)
  * every TCP connection: SSLRequest (answered 'N': ssl is off) unless sslmode=disable, then
    StartupMessage, SCRAM-SHA-256 (R/p/R/p/R), 13 ParameterStatus, BackendKeyData,
    ReadyForQuery; 'X' (Terminate) at close. No SQL at connect.
  * pgbench -n (always used here) opens ONE extra connection first (clients + 1 in all).
    With a custom script (-f) that connection sends no query at all. With a built-in script
    (tpcb-like, -S, -N) it sends two: `select count(*) from pgbench_branches` and a
    catalog query about pgbench_accounts' partitioning (PGBENCH_BUILTIN_SETUP).
    Each of the `clients` connections then runs the script `transactions` times:
      simple:   one Query ('Q') per statement, text with variables substituted;
      extended: Parse(unnamed)/Bind/Describe/Execute/Sync per statement, each time;
      prepared: per connection, first use of each statement: Parse("P_<i>")+Sync (its own
                round trip: ParseComplete, ReadyForQuery), then Bind/Describe/Execute/Sync
                per execution. Statement i of the script is named P_i.
  * psycopg2 sends nothing at connect (DateStyle is already ISO). Not in autocommit mode
    (the default) it sends `BEGIN` before the first statement of each transaction,
    `COMMIT` on commit(), `ROLLBACK` on rollback(); all as simple Queries. copy_expert():
    Query `COPY ... FROM STDIN`, CopyInResponse, CopyData (one message per 8 KiB of input),
    CopyDone, CommandComplete `COPY <n>`. An error: ErrorResponse + ReadyForQuery('E').
  * CommandComplete tags: `END` completes as `COMMIT`; INSERT as `INSERT 0 <n>`.

MariaDB
  * pymysql: autocommit=False (pymysql's default) sends `SET AUTOCOMMIT = 0` right after
    login; autocommit=True (the default of Mariadb.connect) sends nothing. commit() is a
    COM_QUERY `COMMIT`; close() sends COM_QUIT. All statements are COM_QUERY (pymysql
    interpolates parameters client-side; it has no server-side prepared statements).
  * run_prepared() (Perl DBD::MariaDB, mariadb_server_prepare=1): at connect 4 COM_QUERY:
    `SET NAMES 'utf8mb4'`, `SET character_set_server = 'utf8mb4'`,
    `SET collation_connection = 'utf8mb4_unicode_ci'`, `SET collation_server =
    'utf8mb4_unicode_ci'` (MARIADB_DBD_CONNECT_QUERIES); then COM_STMT_PREPARE x2,
    COM_STMT_EXECUTE per execution (binary result set for the SELECT, no COM_STMT_FETCH),
    after the failing execute (duplicate=True) one COM_STMT_RESET, then COM_STMT_CLOSE x2
    and COM_QUIT in a single write (none of the three gets a reply).
    libmariadb negotiates MARIADB_CLIENT_CACHE_METADATA (extended capabilities 0x1d): an
    execute's result set is the column-count packet `01 00` (count 1, metadata_follows 0),
    NO column definitions, EOF, binary rows, EOF; the definitions came once with the
    prepare's response.
  * Both clients: auth mysql_native_password in the first exchange (no auth switch); EOF
    packets (no CLIENT_DEPRECATE_EOF); no TLS.

Redis
  * redis-benchmark opens one extra connection per run that sends `CONFIG GET save` and
    `CONFIG GET appendonly` in one write (2 commands, `config|get` in INFO commandstats),
    then, per test in -t, `clients` connections. Requests per test: ceil(n / P) * P with
    -P P (whole pipelines), n when P = 1: keep n a multiple of P for exact counts.
    Keys: SET/GET `key:__rand_int__`, INCR `counter:__rand_int__`, LPUSH `mylist`.
    `-t ping` runs two tests (PING_INLINE, the inline-protocol form, and PING_MBULK:
    2n pings); `-t lrange_100` runs an LPUSH test first (n lpush + n lrange), `-t lrange`
    the LPUSH test and four LRANGE tests (100/300/500/600: 4n); `-t mset` sends MSET of 10
    keys. `benchmark()` returns the exact per-command delta from INFO commandstats anyway.
  * redis-py sends nothing at connect and nothing at close (no HELLO, no CLIENT SETINFO, no
    QUIT); `incr(k)` is sent as `INCRBY k 1`; a transaction pipeline is MULTI, the
    commands, EXEC in a single write.
  * redis-cli with the command on its command line sends just that command (the
    `COMMAND DOCS` it sends is only in interactive mode).
"""
import atexit
import collections
import glob
import math
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "pylib"))
from loopback import free_port  # noqa: E402

PGBENCH_BUILTIN_SETUP = (
    "select count(*) from pgbench_branches",
    "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c "
    "join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral "
    "(select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) "
    "left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) "
    "left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) "
    "where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc "
    "limit 1",
)

MARIADB_DBD_CONNECT_QUERIES = (
    "SET NAMES 'utf8mb4'",
    "SET character_set_server = 'utf8mb4'",
    "SET collation_connection = 'utf8mb4_unicode_ci'",
    "SET collation_server = 'utf8mb4_unicode_ci'",
)

_PORT_IN_USE = ("Address already in use", "could not bind IPv4 address")


# ---------------------------------------------------------------------------------------------
# Shared machinery


def _listening(port, host="127.0.0.1"):
    """True when a TCP socket listens on host:port (read from /proc/net/tcp, no connection)."""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(host.split("."))), port)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def _children(pid):
    """PIDs of the live descendants of `pid` (from /proc/*/stat)."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses.
        parent[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _proc_stat(pid):
    """(state, start time in clock ticks) of process `pid`, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def _alive(pid, started=None):
    """True when `pid` exists, is not a zombie and (if given) started at `started` (so a
    reused PID is not taken for the process seen before)."""
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z" and (started is None or st[1] == started)


def _clean_env(**extra):
    """The caller's environment without PG*/MYSQL*/REDISCLI* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "MYSQL", "MARIADB", "REDISCLI"))}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _check_traversable(path, user):
    """Raises if `user` cannot reach `path` (a daemon running as `user` works inside it)."""
    pw = pwd.getpwnam(user)
    d = os.path.dirname(os.path.abspath(path))
    while True:
        st = os.stat(d)
        if not (st.st_mode & 0o001 or (st.st_uid == pw.pw_uid and st.st_mode & 0o100)
                or (st.st_gid == pw.pw_gid and st.st_mode & 0o010)):
            raise RuntimeError(f"{path}: user {user} cannot traverse {d} "
                               f"(mode {oct(st.st_mode & 0o777)}): pass another parent=")
        if d == "/":
            return
        d = os.path.dirname(d)


class _Server:
    """A daemon in its own temporary directory, in the foreground, stopped by PID."""

    NAME = "server"
    USER = None          # system user the daemon runs as (None: root)
    STOP_SIGNAL = signal.SIGTERM
    START_TIMEOUT = 20.0

    def __init__(self, procs, parent=None):
        self.procs = procs
        self.parent = parent
        self.dir = None
        self.port = None
        self.proc = None
        self.log = None
        self.start_seconds = None   # how long start() took, and its parts (prepare: initdb
        self.start_phases = {}      # or install-db; ready: launch to ready; setup: users)
        self._logf = None
        self._mark = 0
        self._known_pids = {}  # pid: start time (descendants seen), for a safe SIGKILL
        self._atexit_registered = False

    # -- to implement
    def _prepare(self):
        """One-time work before the first launch (initdb...)."""

    def _argv(self):
        raise NotImplementedError

    def _ready(self):
        """True once the daemon accepts connections (besides listening on self.port)."""
        return True

    def _setup(self):
        """Users, databases... once the daemon is ready."""

    # -- common
    def start(self):
        """Creates the directory, starts the daemon on a free port, waits until it serves and
        sets it up. Returns self. Raises RuntimeError (with the log tail) on failure, after
        stopping whatever it started and removing the directory."""
        t0 = time.monotonic()
        if not self._atexit_registered:  # a forgotten stop(): still no process, no directory
            atexit.register(self.stop)
            self._atexit_registered = True
        self.dir = tempfile.mkdtemp(prefix=f"redtap-{self.NAME}-", dir=self.parent)
        if len(self.dir) > 80:  # unix socket paths are limited to 107 bytes
            shutil.rmtree(self.dir)
            self.dir = None
            raise RuntimeError(f"{self.NAME}: {self.parent!r} is too long a path for the "
                               "server's unix socket: pass a shorter parent=")
        if self.USER:
            pw = pwd.getpwnam(self.USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            _check_traversable(self.dir, self.USER)
        os.chmod(self.dir, 0o700)
        self.log = os.path.join(self.dir, f"{self.NAME}.log")
        self._logf = open(self.log, "ab")
        phases = {}
        try:
            self._prepare()
            phases["prepare"] = time.monotonic() - t0
            for attempt in range(3):
                self.port = free_port()
                mark = self._logf.tell()
                self._launch()
                try:
                    self._wait_ready()
                    break
                except RuntimeError:
                    self._kill()
                    if attempt < 2 and any(s in self._log_since(mark) for s in _PORT_IN_USE):
                        continue  # lost the race for the free port: another one
                    raise
            phases["ready"] = time.monotonic() - t0 - sum(phases.values())
            self._setup()
            phases["setup"] = time.monotonic() - t0 - sum(phases.values())
        except BaseException as e:
            tail = self.log_tail()
            self.stop()
            if isinstance(e, RuntimeError):
                raise RuntimeError(f"{self.NAME} did not start: {e}\n--- {self.NAME} log, "
                                   f"last lines ---\n{tail}") from None
            raise
        self.start_seconds = time.monotonic() - t0
        self.start_phases = phases
        return self

    def _launch(self):
        kw = {"stdout": self._logf, "stderr": subprocess.STDOUT, "cwd": self.dir,
              "env": _clean_env(LANG="C", LC_ALL="C")}
        if self.USER:
            kw.update(user=self.USER, group=pwd.getpwnam(self.USER).pw_gid, extra_groups=[])
        self._mark = self._logf.tell()
        self.proc = self.procs.start(self._argv(), **kw)
        self._known_pids[self.proc.pid] = None
        if self.STOP_SIGNAL != signal.SIGTERM:
            # procs.stop_all() sends SIGTERM: make it the daemon's own stop signal.
            orig, sig = self.proc.send_signal, self.STOP_SIGNAL
            self.proc.send_signal = lambda s: orig(sig if s == signal.SIGTERM else s)

    def _wait_ready(self):
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}")
            if _listening(self.port) and self._ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {self.START_TIMEOUT:.0f}s "
                                   f"(port {self.port})")
            time.sleep(0.02)

    def _log_since(self, offset):
        self._logf.flush()
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self, lines=30):
        """The last `lines` lines of the daemon's log (stdout and stderr)."""
        if not self.log or not os.path.exists(self.log):
            return ""
        with open(self.log, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])

    def log_text(self):
        """The whole daemon log (with Postgres(log_statements=True): every statement)."""
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def pids(self):
        """PIDs of the daemon and its live descendants (PostgreSQL backends...)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        kids = _children(self.proc.pid)
        for k in kids:
            st = _proc_stat(k)
            if st:
                self._known_pids.setdefault(k, st[1])
        return [self.proc.pid] + kids

    def _kill(self):
        """Stops the daemon by PID (STOP_SIGNAL, SIGKILL after 15 s), then SIGKILLs any of
        its descendants still alive (only processes it started)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.pids()  # remember the descendants before they are reparented
            self.proc.send_signal(self.STOP_SIGNAL)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid, started in self._known_pids.items():
            if pid != self.proc.pid and _alive(pid, started):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop(self):
        """Stops the daemon (see _kill) and removes the temporary directory. Idempotent;
        safe after procs.stop_all() stopped the process (the directory still goes)."""
        self._close_clients()
        self._kill()
        if self._logf:
            self._logf.close()
            self._logf = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _close_clients(self):
        pass

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    def _run(self, argv, what, timeout=120, check=True, **kw):
        kw.setdefault("env", _clean_env())
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise RuntimeError(f"{what} failed ({r.returncode}): {' '.join(argv)}\n"
                               f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return r


def start_all(*servers):
    """Starts the servers concurrently (their initdb/install-db overlap on 2 cores); if one
    fails, stops all and raises its error. Returns the servers."""
    import concurrent.futures  # noqa: PLC0415
    with concurrent.futures.ThreadPoolExecutor(len(servers)) as ex:
        futures = [ex.submit(s.start) for s in servers]
    errors = [f.exception() for f in futures if f.exception()]
    if errors:
        for s in servers:
            s.stop()
        raise errors[0]
    return servers


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _pg_bindir():
    env = os.environ.get("REDTAP_PG_BINDIR")
    if env:
        return env
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                  key=lambda p: int(p.split("/")[4]))
    if not dirs:
        raise RuntimeError("no PostgreSQL server (apt-get install postgresql-15)")
    return os.path.dirname(dirs[-1])


class Postgres(_Server):
    """PostgreSQL 15 in a temporary directory, on 127.0.0.1:`.port`.

    initdb (-N: no fsync; --auth-host=scram-sha-256, --auth-local=trust), then `postgres`
    as the `postgres` system user with fsync/synchronous_commit/full_page_writes off,
    shared_buffers=16MB, autovacuum off, pg_stat_statements preloaded (track=all), unix socket
    in the temporary directory. A role `app` (password `.password`, SCRAM) owns database
    `shop` (initdb's `postgres` database renamed: there is no `postgres` database; use
    template1 for another), where the pg_stat_statements extension exists.

    sslmode: the libpq sslmode of `.dsn` and pgbench ('prefer', libpq's default, sends an
    SSLRequest on every connection, answered 'N'; 'disable' sends none).
    log_statements: log_statement=all and connections in the server log (`.log_text()`).
    """

    NAME = "postgres"
    USER = "postgres"
    # Fast shutdown: does not wait for clients to disconnect (SIGTERM, a smart shutdown,
    # would); procs.stop_all()'s SIGTERM is turned into it too.
    STOP_SIGNAL = signal.SIGINT

    def __init__(self, procs, parent=None, password="app-secret", sslmode="prefer",
                 log_statements=False, settings=None):
        super().__init__(procs, parent)
        self.bindir = _pg_bindir()
        self.user = "app"
        self.password = password
        self.dbname = "shop"
        self.sslmode = sslmode
        self.log_statements = log_statements
        self.settings = dict(settings or {})

    @property
    def datadir(self):
        return os.path.join(self.dir, "data")

    @property
    def dsn(self):
        """libpq connection string for `app` over TCP (psycopg2.connect(pg.dsn))."""
        return (f"host=127.0.0.1 port={self.port} user={self.user} password={self.password} "
                f"dbname={self.dbname} sslmode={self.sslmode}")

    def _prepare(self):
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write("postgres-secret\n")
        pw = pwd.getpwnam(self.USER)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        r = subprocess.run(
            [os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", "postgres",
             f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
             "-N", "-E", "UTF8", "--locale=C", "--no-instructions"],
            stdout=self._logf, stderr=subprocess.STDOUT, cwd=self.dir, timeout=60,
            user=self.USER, group=pw.pw_gid, extra_groups=[], env=_clean_env(LANG="C"))
        os.unlink(pwfile)
        if r.returncode != 0:
            raise RuntimeError(f"initdb exited with {r.returncode}")

    def _argv(self):
        conf = {
            "listen_addresses": "127.0.0.1", "port": self.port,
            "unix_socket_directories": self.dir, "max_connections": 40,
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
            "shared_buffers": "16MB", "autovacuum": "off", "jit": "off",
            "wal_level": "minimal", "max_wal_senders": 0,
            "shared_preload_libraries": "pg_stat_statements",
            "pg_stat_statements.track": "all", "pg_stat_statements.max": 5000,
            "logging_collector": "off", "log_destination": "stderr",
        }
        if self.log_statements:
            conf.update(log_statement="all", log_connections="on", log_disconnections="on")
        conf.update(self.settings)
        argv = [os.path.join(self.bindir, "postgres"), "-D", self.datadir]
        for k, v in conf.items():
            argv += ["-c", f"{k}={v}"]
        return argv

    def _ready(self):
        # postmaster.pid's 8th line says "ready" once connections are accepted.
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _setup(self):
        # initdb's `postgres` database becomes `shop` (renaming is instant; CREATE DATABASE
        # copies template1: half a second on a busy machine).
        self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}';\n"
                  f"ALTER DATABASE postgres RENAME TO {self.dbname};\n"
                  f"ALTER DATABASE {self.dbname} OWNER TO {self.user};\n"
                  f"\\connect {self.dbname}\n"
                  "CREATE EXTENSION pg_stat_statements;\n", db="template1")

    # -- helpers over the unix socket (not captured on TCP)
    def _psql_argv(self, db, user):
        return [os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", self.dir, "-p", str(self.port), "-U", user, "-d", db]

    def psql(self, sql, db=None, user="postgres"):
        """Runs `sql` (any number of statements) with psql over the unix socket (trust auth)
        as `user`; returns psql's unaligned, tuples-only output. Raises on any error."""
        return self._run(self._psql_argv(db or self.dbname, user) + ["-A", "-t", "-f", "-"],
                         "psql", input=sql).stdout

    def query(self, sql, db=None, user="postgres"):
        """Rows of one statement, as tuples of strings (NULL: '')."""
        out = self._run(self._psql_argv(db or self.dbname, user) +
                        ["-A", "-t", "-F", "\x1f", "-R", "\x1e", "-c", sql], "psql").stdout
        return [tuple(r.split("\x1f")) for r in out.rstrip("\n").split("\x1e") if r != ""]

    def statements(self, user=None):
        """pg_stat_statements for the statements `user` (default `app`) ran, as dicts
        {query, calls, rows}: the server's exact count of each (normalized) statement that
        COMPLETED (statements that failed are not counted). Includes BEGIN/COMMIT/COPY
        (track_utility), with one PG 15 quirk: a utility statement run from a named prepared
        statement (pgbench -M prepared: BEGIN;/END;) counts at its first execution only, so
        once per connection; DML counts every execution in every protocol. Also includes
        what `app` ran over the unix socket (pg.psql(..., user="app")). Updated before the
        client gets its reply."""
        rows = self.query(
            "SELECT query, calls, rows FROM pg_stat_statements "
            f"WHERE userid = '{user or self.user}'::regrole ORDER BY query")
        return [{"query": q, "calls": int(c), "rows": int(n)} for q, c, n in rows]

    def statement_counts(self, user=None):
        """{(operation, table): calls} over statements(), classified with classify_sql()."""
        out = collections.Counter()
        for s in self.statements(user):
            out[classify_sql(s["query"])] += s["calls"]
        return out

    def reset_statements(self):
        """Zeroes pg_stat_statements."""
        self.psql("SELECT pg_stat_statements_reset();")

    def wait_idle(self, user=None, timeout=10.0):
        """Waits until no backend of `user` (default `app`) is left: their table/database
        statistics are flushed when they exit (pg_stat_* lag by up to 1 s otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            n = int(self.query("SELECT count(*) FROM pg_stat_activity "
                               f"WHERE usename = '{user or self.user}'")[0][0])
            if n == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} backends of {user or self.user} still connected")
            time.sleep(0.05)

    def table_stats(self):
        """{table: {n_tup_ins, n_tup_upd, n_tup_del, seq_scan, idx_scan}} from
        pg_stat_user_tables of `shop` (call wait_idle() first)."""
        cols = ("n_tup_ins", "n_tup_upd", "n_tup_del", "seq_scan", "idx_scan")
        rows = self.query(f"SELECT relname, {', '.join(cols)} FROM pg_stat_user_tables")
        return {r[0]: {c: int(v or 0) for c, v in zip(cols, r[1:])} for r in rows}

    def db_stats(self):
        """pg_stat_database of `shop`: xact_commit, xact_rollback, tup_inserted, tup_updated,
        tup_deleted (wait_idle() first). Noisy as a count of client transactions: every
        psql helper call adds its own, and so does each Parse+Sync outside a transaction
        block (pgbench -M prepared: one per connection, preparing `BEGIN;`)."""
        cols = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")
        r = self.query(f"SELECT {', '.join(cols)} FROM pg_stat_database "
                       f"WHERE datname = '{self.dbname}'")[0]
        return {c: int(v) for c, v in zip(cols, r)}

    def connect(self, **kw):
        """A psycopg2 connection as `app` over TCP."""
        import psycopg2  # noqa: PLC0415
        return psycopg2.connect(self.dsn, **kw)

    # -- pgbench
    def pgbench_init(self, scale=1):
        """pgbench -i -s scale as `app` over the UNIX socket (not on TCP): tables
        pgbench_accounts (100000 * scale rows), pgbench_branches, pgbench_tellers,
        pgbench_history, owned by `app`."""
        self._run([os.path.join(self.bindir, "pgbench"), "-i", "-q", "-s", str(scale),
                   "-h", self.dir, "-p", str(self.port), "-U", self.user, self.dbname],
                  "pgbench -i")

    def pgbench(self, transactions=10, clients=1, protocol="simple", script=None,
                builtin=None, args=(), check=True, timeout=300):
        """Runs pgbench -n over TCP (127.0.0.1, SCRAM with PGPASSWORD) as `app`:
        `clients` connections (-c, -j 1), each running its script `transactions` times (-t),
        in `protocol` (-M simple|extended|prepared).

        script: text of a custom script (written to a file, -f), e.g. PGBENCH_SCRIPT;
        otherwise the built-in `builtin` (None: tpcb-like; 'select-only', 'simple-update')
        which needs pgbench_init() and adds PGBENCH_BUILTIN_SETUP on the extra connection.
        Expected statements: pgbench_script_counts(script, transactions, clients).

        Returns {processed, planned, failed, connections, output}: processed/planned from
        "number of transactions actually processed: N/M"; connections = clients + 1 (the
        extra connection pgbench opens first). With check, raises unless pgbench exited 0
        and processed == planned."""
        if protocol not in ("simple", "extended", "prepared"):
            raise ValueError(protocol)
        argv = [os.path.join(self.bindir, "pgbench"), "-n", "-h", "127.0.0.1",
                "-p", str(self.port), "-U", self.user, "-M", protocol,
                "-t", str(transactions), "-c", str(clients), "-j", "1"]
        if script is not None:
            fd, path = tempfile.mkstemp(prefix="pgbench-", suffix=".sql", dir=self.dir)
            with os.fdopen(fd, "w") as f:
                f.write(script)
            argv += ["-f", path]
        elif builtin:
            argv += ["-b", builtin]
        argv += list(args) + [self.dbname]
        r = self._run(argv, "pgbench", timeout=timeout, check=False,
                      env=_clean_env(PGPASSWORD=self.password, PGSSLMODE=self.sslmode,
                                     PGGSSENCMODE="disable"))
        out = r.stdout + r.stderr
        m = re.search(r"number of transactions actually processed: (\d+)/(\d+)", out)
        fm = re.search(r"number of failed transactions: (\d+)", out)
        res = {"processed": int(m.group(1)) if m else 0,
               "planned": int(m.group(2)) if m else transactions * clients,
               "failed": int(fm.group(1)) if fm else 0,
               "connections": clients + 1, "returncode": r.returncode, "output": out}
        if check and (r.returncode != 0 or res["processed"] != res["planned"]):
            raise RuntimeError(f"pgbench failed ({r.returncode}): {' '.join(argv)}\n{out}")
        return res


# A custom pgbench script for the tests: one row in each table (schema in
# PGBENCH_SCRIPT_SCHEMA, created with pg.psql(..., user="app")).
PGBENCH_SCRIPT_SCHEMA = """
CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL, qty int NOT NULL);
CREATE TABLE stock (item text PRIMARY KEY, n int NOT NULL);
INSERT INTO stock VALUES ('widget', 1000000);
"""
PGBENCH_SCRIPT = """\\set qty random(1, 5)
BEGIN;
INSERT INTO orders (item, qty) VALUES ('widget', :qty);
UPDATE stock SET n = n - :qty WHERE item = 'widget';
SELECT n FROM stock WHERE item = 'widget';
SELECT count(*) FROM orders WHERE qty = :qty;
END;
"""

_SQL_TABLE = [
    (re.compile(r"^(SELECT)\b.*?\bFROM\s+([\w.\"]+)", re.I | re.S), 1),
    (re.compile(r"^(INSERT)\s+INTO\s+([\w.\"]+)", re.I), 1),
    (re.compile(r"^(UPDATE)\s+(?:ONLY\s+)?([\w.\"]+)", re.I), 1),
    (re.compile(r"^(DELETE)\s+FROM\s+(?:ONLY\s+)?([\w.\"]+)", re.I), 1),
    (re.compile(r"^(COPY)\s+([\w.\"]+)", re.I), 1),
    (re.compile(r"^(TRUNCATE)\s+(?:TABLE\s+)?([\w.\"]+)", re.I), 1),
]


def classify_sql(sql):
    """(OPERATION, table) of one statement: the first keyword upper-cased (note `END`
    stays `END`, while its CommandComplete tag is `COMMIT`) and, for SELECT ... FROM,
    INSERT INTO, UPDATE, DELETE FROM, COPY, TRUNCATE, the first table named, lower-cased,
    without quotes or schema; otherwise None."""
    s = sql.strip().rstrip(";").strip()
    for rx, _ in _SQL_TABLE:
        m = rx.match(s)
        if m:
            return m.group(1).upper(), m.group(2).replace('"', "").split(".")[-1].lower()
    first = s.split(None, 1)[0].upper() if s else ""
    return first, None


def pgbench_script_statements(script):
    """The SQL statements of a pgbench script in order, as pgbench sends them (before
    :variable substitution): `\\` meta-command lines and `--` comment lines are skipped,
    statements end at `;` (no `;` inside literals, no `\\;` compounds)."""
    out, cur = [], []
    for line in script.splitlines():
        s = line.strip()
        if not s or s.startswith("--") or s.startswith("\\"):
            continue
        while ";" in s:
            head, s = s.split(";", 1)
            cur.append(head)
            stmt = " ".join(p.strip() for p in cur if p.strip())
            if stmt:
                out.append(stmt + ";")
            cur = []
            s = s.strip()
        if s:
            cur.append(s)
    if cur:
        out.append(" ".join(cur))
    return out


def pgbench_script_counts(script, transactions, clients):
    """{(OPERATION, table): n} the server executes for `pgbench -t transactions -c clients
    -f script` when all transactions succeed: every statement of the script runs
    transactions * clients times, in any protocol (classify_sql() per statement)."""
    out = collections.Counter()
    for stmt in pgbench_script_statements(script):
        out[classify_sql(stmt)] += transactions * clients
    return out


# ---------------------------------------------------------------------------------------------
# MariaDB

_PREPARED_PL = r"""
use strict; use warnings; use DBI qw(:sql_types);
my ($port, $user, $pw, $n, $first, $dup) = @ARGV;
my $dbh = DBI->connect(
    "DBI:MariaDB:database=shop;host=127.0.0.1;port=$port;mariadb_server_prepare=1",
    $user, $pw, {RaiseError => 1, PrintError => 0, AutoCommit => 1});
my $ins = $dbh->prepare("INSERT INTO ps_orders (id, item) VALUES (?, ?)");
my $sel = $dbh->prepare("SELECT item FROM ps_orders WHERE id = ?");
my ($inserts, $selects, $errors) = (0, 0, 0);
for my $i (0 .. $n - 1) {
    my $id = $first + $i;
    $ins->bind_param(1, $id, SQL_INTEGER); $ins->bind_param(2, "item$id");
    $ins->execute; $inserts++;
    $sel->bind_param(1, $id, SQL_INTEGER);
    $sel->execute; $selects++;
    my @r = $sel->fetchrow_array;
    die "SELECT $id returned " . ($r[0] // 'nothing') unless defined $r[0] && $r[0] eq "item$id";
    $sel->finish;
}
if ($dup) {
    $ins->bind_param(1, $first, SQL_INTEGER); $ins->bind_param(2, "dup");
    eval { $ins->execute; 1 } and die "duplicate INSERT succeeded";
    die "unexpected error " . $dbh->err unless $dbh->err == 1062;
    $inserts++; $errors++;
}
undef $ins; undef $sel;
$dbh->disconnect;
print "inserts=$inserts selects=$selects errors=$errors\n";
"""


class Mariadb(_Server):
    """MariaDB 10.11 in a temporary directory, on 127.0.0.1:`.port`.

    mariadb-install-db (root@localhost without password, reachable on the unix socket only
    in practice), then mariadbd as the `mysql` system user with a 16 MB buffer pool, no
    binary log, no performance_schema, flush-at-commit 0, no doublewrite, simulated AIO
    (io_uring/libaio need not work in a container). A user `app`@`127.0.0.1` (password
    `.password`, mysql_native_password) has all privileges on database `shop`.

    general_log: log every command (Connect/Query/Prepare/Execute/Close stmt/Quit) to a file
    (`.general_log_text()`).
    """

    NAME = "mariadb"
    USER = "mysql"

    def __init__(self, procs, parent=None, password="app-secret", general_log=False):
        super().__init__(procs, parent)
        self.user = "app"
        self.password = password
        self.database = "shop"
        self.general_log = general_log
        self._next_ps_id = 1

    @property
    def socket_path(self):
        return os.path.join(self.dir, "mysqld.sock")

    def _server_opts(self):
        return ["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M",
                "--innodb-use-native-aio=0", "--skip-name-resolve"]

    def _prepare(self):
        r = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--user={self.USER}",
             f"--datadir={self.dir}/data", "--auth-root-authentication-method=normal",
             "--skip-test-db"] + self._server_opts(),
            stdout=self._logf, stderr=subprocess.STDOUT, cwd=self.dir, timeout=120,
            env=_clean_env(LANG="C"))
        if r.returncode != 0:
            raise RuntimeError(f"mariadb-install-db exited with {r.returncode}")

    def _argv(self):
        argv = ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.dir}/data",
                f"--socket={self.socket_path}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--pid-file={self.dir}/mariadbd.pid",
                "--skip-log-bin", "--performance-schema=OFF",
                "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
                "--max-connections=64", f"--tmpdir={self.dir}"] + self._server_opts()
        if self.general_log:
            argv += ["--general-log=1", f"--general-log-file={self.dir}/general.log"]
        return argv

    def _ready(self):
        return (os.path.exists(self.socket_path)
                and "ready for connections" in self._log_since(self._mark))

    def _setup(self):
        self.sql(f"CREATE DATABASE {self.database};\n"
                 f"CREATE USER '{self.user}'@'127.0.0.1' IDENTIFIED BY '{self.password}';\n"
                 f"GRANT ALL ON {self.database}.* TO '{self.user}'@'127.0.0.1';", db="")

    def sql(self, sql, db=None):
        """Runs `sql` (any number of statements) with the mariadb client over the unix socket
        as root; returns its batch output (tab-separated, no column names)."""
        argv = ["mariadb", "--no-defaults", "-S", self.socket_path, "-uroot", "-N", "-B"]
        db = self.database if db is None else db
        if db:
            argv.append(db)
        return self._run(argv, "mariadb", input=sql).stdout

    def query(self, sql, db=None):
        """Rows of the statements' results, as tuples of strings."""
        return [tuple(line.split("\t")) for line in self.sql(sql, db).splitlines()]

    def status(self):
        """SHOW GLOBAL STATUS as {name: int} for the numeric variables: Com_select,
        Com_insert, Com_stmt_prepare, Com_stmt_execute, Com_stmt_close, Questions,
        Connections... Each status() call itself adds Com_show_status +1, Questions +1
        and Connections +1 (a socket connection as root)."""
        out = {}
        for name, value in self.query("SHOW GLOBAL STATUS", db=""):
            try:
                out[name] = int(value)
            except ValueError:
                pass
        return out

    def general_log_text(self):
        with open(os.path.join(self.dir, "general.log"), errors="replace") as f:
            return f.read()

    def connect(self, **kw):
        """A pymysql connection as `app` to `shop` over TCP; autocommit=True unless given
        (pymysql's own default, False, sends `SET AUTOCOMMIT = 0` after login)."""
        import pymysql  # noqa: PLC0415
        kw.setdefault("autocommit", True)
        return pymysql.connect(host="127.0.0.1", port=self.port, user=self.user,
                               password=self.password, database=self.database, **kw)

    def run_prepared(self, n, duplicate=False, timeout=120):
        """Server-side prepared statements over TCP with the binary protocol, via Perl
        DBD::MariaDB (mariadb_server_prepare=1): one connection as `app` (its 4 SET queries,
        MARIADB_DBD_CONNECT_QUERIES), COM_STMT_PREPARE of
          INSERT INTO ps_orders (id, item) VALUES (?, ?)
          SELECT item FROM ps_orders WHERE id = ?
        then n times COM_STMT_EXECUTE of the INSERT (a new id) and of the SELECT (that id,
        one row back), plus, with duplicate, one more INSERT execute of an existing id that
        fails with ER_DUP_ENTRY (1062), after which DBD::MariaDB sends COM_STMT_RESET; then
        COM_STMT_CLOSE x2 and COM_QUIT. Table ps_orders is created over the unix socket first.

        Returns {prepare: 2, execute_insert, execute_select, reset, close: 2, errors,
        setup_queries}; Com_stmt_prepare/_execute/_reset/_close in status() move by exactly
        these (Com_stmt_execute by execute_insert + execute_select)."""
        self.sql("CREATE TABLE IF NOT EXISTS ps_orders "
                 "(id INT PRIMARY KEY, item VARCHAR(40) NOT NULL)")
        path = os.path.join(self.dir, "prepared.pl")
        with open(path, "w") as f:
            f.write(_PREPARED_PL)
        first = self._next_ps_id
        self._next_ps_id += n
        r = self._run(["perl", path, str(self.port), self.user, self.password, str(n),
                       str(first), "1" if duplicate else "0"], "prepared statements (perl)",
                      timeout=timeout)
        m = re.search(r"inserts=(\d+) selects=(\d+) errors=(\d+)", r.stdout)
        return {"prepare": 2, "execute_insert": int(m.group(1)),
                "execute_select": int(m.group(2)), "reset": int(m.group(3)), "close": 2,
                "errors": int(m.group(3)),
                "setup_queries": list(MARIADB_DBD_CONNECT_QUERIES)}


# ---------------------------------------------------------------------------------------------
# Redis


class RedisError(Exception):
    pass


class _Resp:
    """A minimal RESP2 client over a unix socket (the fixtures' own control connection)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.f = self.sock.makefile("rb")

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise RedisError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError(f"bad reply {line!r}")

    def close(self):
        self.f.close()
        self.sock.close()


class Redis(_Server):
    """Redis 7.0 in a temporary directory, on 127.0.0.1:`.port` (no persistence: save '',
    appendonly no), plus a unix socket the fixture's own control connection uses.

    Ground truth: commandstats() (INFO commandstats minus the fixture's own commands) and
    connections() (INFO stats total_connections_received minus the fixture's one)."""

    NAME = "redis"

    def __init__(self, procs, parent=None):
        super().__init__(procs, parent)
        self._ctl = None
        self._own = collections.Counter()
        self._own_conns = 0

    @property
    def socket_path(self):
        return os.path.join(self.dir, "redis.sock")

    def _argv(self):
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
                "--unixsocket", self.socket_path, "--unixsocketperm", "700",
                "--logfile", "", "--protected-mode", "yes"]

    def _ready(self):
        return os.path.exists(self.socket_path) and \
            "Ready to accept connections" in self._log_since(self._mark)

    def _setup(self):
        self._ctl = _Resp(self.socket_path)
        self._own_conns = 1
        self.command("PING")

    def _close_clients(self):
        if self._ctl:
            self._ctl.close()
            self._ctl = None

    def command(self, *args):
        """Sends one command on the control connection (unix socket) and returns the reply;
        it is remembered and left out of commandstats()."""
        reply = self._ctl.call(*args)
        name = str(args[0]).lower()
        if name == "config" and str(args[1]).lower() == "resetstat":
            self._own = collections.Counter()
            self._own_conns = 0
        if name in ("config", "client", "command", "memory", "object", "acl", "slowlog",
                    "latency", "script", "function", "cluster", "pubsub", "debug"):
            name += "|" + str(args[1]).lower()
        self._own[name] += 1
        return reply

    def info(self, section):
        """INFO `section` as {key: value} (values int when they are)."""
        out = {}
        for line in self.command("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
        return out

    def commandstats(self, field="calls"):
        """{command: count} from INFO commandstats, without the fixture's own commands on the
        control connection: `field` is calls, failed_calls or rejected_calls. Subcommands
        appear as `config|get`, `client|list`... Counts include every client, so the
        numbers are what others sent over TCP."""
        own = collections.Counter(self._own)  # the INFO below counts only once it is done
        out = {}
        for k, v in self.info("commandstats").items():
            if not k.startswith("cmdstat_"):
                continue
            fields = dict(p.split("=", 1) for p in str(v).split(","))
            n = int(float(fields.get(field, 0)))
            if field == "calls":
                n -= own.get(k[len("cmdstat_"):], 0)
            if n:
                out[k[len("cmdstat_"):]] = n
        return out

    def connections(self):
        """Connections accepted other than the fixture's control connection
        (INFO stats total_connections_received, both TCP and unix)."""
        return self.info("stats")["total_connections_received"] - self._own_conns

    def reset_stats(self):
        """CONFIG RESETSTAT: commandstats() and connections() restart from zero."""
        self.command("CONFIG", "RESETSTAT")

    def benchmark(self, tests=("set", "get"), n=100, clients=1, pipeline=1, args=(),
                  timeout=300):
        """redis-benchmark -h 127.0.0.1 -p PORT -n n -c clients -P pipeline -t tests -q.
        Returns {commands: {cmd: calls}, connections, output}: the exact change of
        commandstats() and connections() over the run. Per test: ceil(n/pipeline)*pipeline
        commands over `clients` connections; plus one connection per run with
        `CONFIG GET save` and `CONFIG GET appendonly` (config|get: 2)."""
        before, conns0 = self.commandstats(), self.connections()
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port), "-n", str(n),
                "-c", str(clients), "-P", str(pipeline), "-t", ",".join(tests), "-q"]
        r = self._run(argv + list(args), "redis-benchmark", timeout=timeout)
        after, conns1 = self.commandstats(), self.connections()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        return {"commands": {k: v for k, v in delta.items() if v},
                "connections": conns1 - conns0, "output": r.stdout,
                "expected_per_test": math.ceil(n / pipeline) * pipeline}

    def connect(self, **kw):
        """A redis-py client for 127.0.0.1:port (it sends nothing until used)."""
        import redis  # noqa: PLC0415
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def multi_exec_wrongtype(self, prefix="redtap:tx"):
        """One redis-py connection: SET {prefix}:str "x", then a transaction pipeline
        (one write) MULTI / SET {prefix}:k "v" / LPUSH {prefix}:str "y" / INCRBY
        {prefix}:n 1 / EXEC. EXEC's array holds +OK, the -WRONGTYPE error of LPUSH (the
        transaction still runs: not an EXECABORT) and the counter. Returns the list of
        results, e.g. [True, ResponseError('WRONGTYPE ...'), 1]. commandstats() moves by
        set 2, multi 1, lpush 1 (failed_calls: lpush 1), incrby 1, exec 1; connections() 1."""
        r = self.connect()
        try:
            r.set(f"{prefix}:str", "x")
            p = r.pipeline(transaction=True)
            p.set(f"{prefix}:k", "v")
            p.lpush(f"{prefix}:str", "y")
            p.incr(f"{prefix}:n")
            results = p.execute(raise_on_error=False)
        finally:
            r.close()
        return results
