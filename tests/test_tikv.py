"""The TiKV plugin: TiDB found through PD, on a real mount.

A real etcd (package etcd-server) stands in for PD: TiDB's registry lives in
PD's embedded etcd and PD's client port serves etcd's JSON gateway. The SQL
endpoint registered there is the test MariaDB, so builds take the non-TiDB
fallback (one consistent-snapshot transaction); the TiDB-only statements are
covered by the recorded sequences of tests/unit/test_tidb.c. Every address
is on loopback."""

import http.server
import os
import subprocess
import threading
import urllib.request

import pytest

from conftest import BUILD, SEED_BODY, SEED_ROWS, free_port, wait_for

PREFIX = "/topology/tidb/"

ROWS = SEED_ROWS


def seed_body(pd, extra=""):
    body = SEED_BODY.replace("{pd}", pd)
    if extra:
        body = body.replace('    dbName: "employees"\n', '    dbName: "employees",\n' + extra)
    return body


def dead_addr():
    """A loopback address nobody listens on."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def tidb(employess):
    """The seed's table (conftest.employess) as these tests' TiDB."""
    return employess


def sql_addr(db):
    return f"127.0.0.1:{db.port}"


def check_built(tisfs, st):
    assert st["complete"] and not st["failed"], st["errs"] + tisfs.read(
        "collections", "employess", "logs")
    docs = sorted((d["id"], d.get("name")) for d in tisfs.docs("employess"))
    assert [d[0] for d in docs] == [r[0] for r in ROWS]


def test_seed_body_first_pd_dead_second_alive(tisfs, tidb, pd):
    pd.register_tidb(sql_addr(tidb))
    dead = dead_addr()
    st = tisfs.create("employess", seed_body(f"{dead},{pd.addr}"))
    check_built(tisfs, st)
    logs = tisfs.read("collections", "employess", "logs")
    assert f"PD {dead} unreachable: " in logs
    assert f"PD {pd.addr} answered (/v3/kv/range): 1 TiDB registered" in logs
    assert f"TiDB {sql_addr(tidb)} (8.0.11-TiDB-v7.5.0): alive" in logs
    assert f"connected to TiDB {sql_addr(tidb)} as root, database employees" in logs
    # MariaDB is not TiDB: the fallback, and the log says so.
    assert "is not TiDB: falling back to one consistent-snapshot transaction" in logs
    snap = st["snapshot"]
    assert snap["method"] == "START TRANSACTION WITH CONSISTENT SNAPSHOT"
    assert snap["tso"] is None
    assert snap["pd"] == pd.addr and snap["tidb"] == f"TiDB {sql_addr(tidb)}"
    assert "MariaDB" in snap["server"]
    # The accepted spec reads back with the seed's fields.
    spec = tisfs.json("collections", "employess", "create")
    assert spec["datasource"]["pdAddrs"] == f"{dead},{pd.addr}"


def test_registered_but_dead_tidb_is_skipped(tisfs, tidb, pd):
    # 127.0.0.1:1 is registered and its lease is alive, but nothing answers
    # there (it sorts first, so it is tried first); 127.0.0.1:2 has no ttl key
    # (its TiDB stopped): it is not even tried.
    pd.register_tidb("127.0.0.1:1")
    pd.register_tidb("127.0.0.1:2", alive=False)
    pd.register_tidb(sql_addr(tidb))
    st = tisfs.create("employess", seed_body(pd.addr))
    check_built(tisfs, st)
    logs = tisfs.read("collections", "employess", "logs")
    assert "3 TiDB registered" in logs
    assert "TiDB 127.0.0.1:2 (8.0.11-TiDB-v7.5.0): registered, not alive (no ttl key): " \
        "skipped" in logs
    assert "TiDB 127.0.0.1:1 does not answer (" in logs and "trying the next" in logs
    assert f"connected to TiDB {sql_addr(tidb)}" in logs
    assert st["snapshot"]["tidb"] == f"TiDB {sql_addr(tidb)}"


def failed_build(tisfs, body):
    st = tisfs.create("employess", body)
    assert st["failed"] and not st["complete"] and st["stage"] == "dump", st
    assert st["errs"].startswith("dump: ")
    assert st["errs"][len("dump: "):] in tisfs.read("collections", "employess", "logs")
    return st["errs"]


def test_nothing_alive_is_a_clear_error(tisfs, tidb, pd):
    pd.register_tidb("127.0.0.1:2", alive=False)
    pd.register_tidb(sql_addr(tidb), alive=False)
    errs = failed_build(tisfs, seed_body(pd.addr))
    assert errs == (f"dump: no live TiDB: PD {pd.addr} lists 127.0.0.1:2, {sql_addr(tidb)}, "
                    f"none alive (no {PREFIX}<addr>/ttl key: a running TiDB keeps it)")


def test_no_tidb_registered(tisfs, pd):
    errs = failed_build(tisfs, seed_body(pd.addr))
    assert errs == f"dump: no TiDB registered in PD {pd.addr} (no keys under {PREFIX})"


def test_every_pd_unreachable_lists_them(tisfs):
    a, b = dead_addr(), dead_addr()
    errs = failed_build(tisfs, seed_body(f"{a}, {b}"))
    assert errs.startswith(f"dump: every PD unreachable: {a} (")
    assert f"), {b} (" in errs


def test_live_but_unanswering_tidb_is_an_error(tisfs, pd):
    pd.register_tidb("127.0.0.1:1")
    errs = failed_build(tisfs, seed_body(pd.addr))
    assert errs.startswith("dump: no live TiDB answered: TiDB 127.0.0.1:1 (")


def test_expired_lease_means_not_alive(tisfs, tidb, pd):
    """A TiDB that stops no longer refreshes its lease: the ttl key goes."""
    pd.register_tidb(sql_addr(tidb), ttl=1)
    wait_for(lambda: f"{PREFIX}{sql_addr(tidb)}/ttl" not in pd.keys(PREFIX), 30,
             what="the ttl key's lease to expire")
    errs = failed_build(tisfs, seed_body(pd.addr))
    assert "none alive" in errs


def test_tidb_addr_skips_discovery(tisfs, tidb):
    dead = dead_addr()
    st = tisfs.create("employess",
                      seed_body(dead, f'    tidbAddr: "{sql_addr(tidb)}",\n'))
    check_built(tisfs, st)
    logs = tisfs.read("collections", "employess", "logs")
    assert f"tidbAddr given: using TiDB {sql_addr(tidb)}, no discovery through PD" in logs
    assert "PD " not in logs.replace("through PD", "")
    assert "pd" not in st["snapshot"]


def test_user_and_password(tisfs, tidb, pd):
    pd.register_tidb(sql_addr(tidb))
    st = tisfs.create("employess", seed_body(pd.addr, '    user: "tis", password: "tispw",\n'))
    check_built(tisfs, st)
    assert "connected to TiDB" in tisfs.read("collections", "employess", "logs")
    assert "tispw" not in tisfs.read("collections", "employess", "create")


class V3BetaOnly(http.server.BaseHTTPRequestHandler):
    """An older etcd: /v3/ is unknown, /v3beta/ is served (by forwarding to
    the real etcd's /v3/)."""
    etcd_port = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.path.startswith("/v3beta/"):
            self.send_response(404)
            self.end_headers()
            return
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.etcd_port}/v3/{self.path[len('/v3beta/'):]}", data=body,
            headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=5) as r:
            out = r.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def test_v3beta_fallback(tisfs, tidb, pd):
    pd.register_tidb(sql_addr(tidb))
    V3BetaOnly.etcd_port = pd.port
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), V3BetaOnly)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        old = f"127.0.0.1:{server.server_address[1]}"
        st = tisfs.create("employess", seed_body(old))
        check_built(tisfs, st)
        assert f"PD {old} answered (/v3beta/kv/range)" in tisfs.read(
            "collections", "employess", "logs")
    finally:
        server.shutdown()
        server.server_close()
        t.join()


def test_chunks_partition_real_tables(tidb):
    """WHERE clauses of chunk boundaries and the parallel reader, on real
    MariaDB connections: integer, unsigned, string and composite keys, every
    row in exactly one chunk (tests/unit/test_tidb.c --mysql)."""
    tidb.execute("CREATE DATABASE IF NOT EXISTS tikvtest")
    out = subprocess.run([os.path.join(BUILD, "tests", "test_tidb"), "--mysql", "127.0.0.1",
                          str(tidb.port), "tis", "tispw", "tikvtest"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.rstrip().endswith(" passed, 0 failed"), \
        out.stdout[-4000:] + out.stderr[-4000:]

