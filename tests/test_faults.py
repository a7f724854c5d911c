"""Faults a machine or a server inflicts at one chosen instant: a catalog
write that fails (a full disk, a full LMDB map) exactly at the switch or at
a task's start, an impostor MySQL server, readers racing a switch.

A full disk cannot be timed from outside to hit one chosen write, so the
catalog faults use the daemon's test hook TISFS_FAULT=TABLE:N:ERROR (the
N-th write into that catalog table since start fails once with ERROR; see
src/catalog.c). test_hardening.py fills a real tmpfs for the build side."""

import errno
import os
import threading

import pytest

from conftest import mysql_spec


def rows_table(mariadb, table, n):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(f"DROP TABLE IF EXISTS tistest.{table}",
                    f"CREATE TABLE tistest.{table} (id INT PRIMARY KEY, t VARCHAR(40))",
                    f"INSERT INTO tistest.{table} SELECT seq, CONCAT('row ', seq)"
                    f" FROM seq_1_to_{n}", db="tistest")


def write_within(path, text, timeout=30):
    """Writes text to a control file from a thread and returns the OSError
    it raised, or None. A daemon that hangs would hang this process in
    close(), which no signal interrupts: the deadline fails the test instead."""
    out = {}

    def run():
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            out["err"] = None
        except OSError as e:
            out["err"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert "err" in out, f"writing {path} did not return within {timeout} s"
    return out["err"]


def found(tisfs, name):
    return tisfs.json("collections", name, "select", "q=*:*&rows=0")["response"]["numFound"]


def generations(tisfs, name):
    return sorted(d for d in os.listdir(os.path.join(tisfs.data, "collections", name))
                  if d.startswith("gen-"))


@pytest.mark.parametrize("error,says", [("ENOSPC", "No space left on device"),
                                        ("MDB_MAP_FULL", "MDB_MAP_FULL")])
def test_a_switch_the_catalog_cannot_record_keeps_the_old_generation(tisfs, mariadb,
                                                                     monkeypatch, error, says):
    """Issue 10, items 13 and 14: the rebuild's switch is the second write
    into the collections table after a start (the first records the task).
    When it fails, the old generation serves, before and after a restart,
    the task fails naming the cause, and the catalog takes later writes (a
    put that kept its write transaction would hang every one of them)."""
    rows_table(mariadb, "f_switch", 3)
    spec = mysql_spec(mariadb, "f_switch", ['{name:"t"}'])
    assert tisfs.create("sw", spec)["complete"]
    old = tisfs.json("collections", "sw", "schema")["generation"]
    mariadb.execute("INSERT INTO tistest.f_switch VALUES (4, 'row 4'), (5, 'row 5')")
    monkeypatch.setenv("TISFS_FAULT", f"collections:2:{error}")
    tisfs.restart()
    tisfs.write("1", "collections", "sw", "build")
    # Finishing the task writes its status and log into the catalog.
    st = tisfs.wait_done("sw", 60)
    assert st["failed"], st
    assert f"indexBackflow: the catalog cannot record the switch: {says}" in st["errs"], st
    assert found(tisfs, "sw") == 3
    assert generations(tisfs, "sw") == [f"gen-{old}"]
    monkeypatch.delenv("TISFS_FAULT")
    tisfs.restart()
    assert tisfs.json("collections", "sw", "schema")["generation"] == old
    assert found(tisfs, "sw") == 3
    assert generations(tisfs, "sw") == [f"gen-{old}"]
    assert tisfs.status("sw")["failed"]
    # The next rebuild switches.
    tisfs.write("1", "collections", "sw", "build")
    assert tisfs.wait_done("sw", 60)["complete"]
    assert found(tisfs, "sw") == 5
    assert len(generations(tisfs, "sw")) == 1


def test_a_task_id_the_catalog_cannot_record_starts_nothing_and_holds_nothing(tisfs, mariadb,
                                                                             monkeypatch):
    """Issue 10, item 14: a build's first catalog write takes its task id
    (the first write into the meta table after a start). When that put fails
    the build is refused with EIO, and the next build runs: before the fix
    the failed put kept the write transaction, and every later catalog
    write, this second build's included, blocked forever."""
    rows_table(mariadb, "f_taskid", 2)
    assert tisfs.create("tid", mysql_spec(mariadb, "f_taskid", ['{name:"t"}']))["complete"]
    monkeypatch.setenv("TISFS_FAULT", "meta:1:MDB_MAP_FULL")
    tisfs.restart()
    build = tisfs.path("collections", "tid", "build")
    e = write_within(build, "1")
    assert e is not None and e.errno == errno.EIO, e
    assert "the catalog cannot be written (is the disk full?)" in tisfs.read("logs")
    assert write_within(build, "1") is None
    st = tisfs.wait_done("tid", 60)
    assert st["complete"], st
    assert found(tisfs, "tid") == 2


class RewritingProxy:
    """A MySQL server that lies: a loopback proxy in front of the real
    MariaDB that rewrites the text of chosen queries (regex -> replacement)
    before the server sees them, so the answers come from a real server but
    with NULL cells or fewer columns than asked. The server's greeting loses
    its TLS flag so that the client's queries stay readable."""

    def __init__(self, upstream_port, rules):
        import re
        import socket
        import threading
        self.rules = [(re.compile(p), r) for p, r in rules]
        self.upstream = upstream_port
        self.rewritten = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        import socket
        import threading
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.conns += [client, server]
            threading.Thread(target=self.pump, args=(server, client, self.greeting),
                             daemon=True).start()
            threading.Thread(target=self.pump, args=(client, server, self.query),
                             daemon=True).start()

    @staticmethod
    def read_packet(s):
        def exactly(n):
            b = b""
            while len(b) < n:
                chunk = s.recv(n - len(b))
                if not chunk:
                    raise EOFError
                b += chunk
            return b
        head = exactly(4)
        return head[3], exactly(int.from_bytes(head[:3], "little"))

    def pump(self, src, dst, edit):
        """Copies packets from src to dst; edit(seq, payload) may change each."""
        first = True
        try:
            while True:
                seq, payload = self.read_packet(src)
                payload = edit(seq, payload, first)
                first = False
                dst.sendall(len(payload).to_bytes(3, "little") + bytes([seq]) + payload)
        except (EOFError, OSError):
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    @staticmethod
    def greeting(seq, payload, first):
        if not first:
            return payload
        caps = payload.index(b"\0", 1) + 1 + 4 + 8 + 1  # version, thread id, salt, filler
        low = int.from_bytes(payload[caps:caps + 2], "little") & ~0x0800  # CLIENT_SSL
        return payload[:caps] + low.to_bytes(2, "little") + payload[caps + 2:]

    def query(self, seq, payload, first):
        if seq != 0 or payload[:1] != b"\x03":  # COM_QUERY starts a command
            return payload
        sql = payload[1:].decode("utf-8", "surrogateescape")
        for pattern, replacement in self.rules:
            new = pattern.sub(replacement, sql)
            if new != sql:
                self.rewritten.append((sql, new))
                sql = new
        return b"\x03" + sql.encode("utf-8", "surrogateescape")

    def close(self):
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


IMPOSTORS = {
    "a NULL data type": ([(r"SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE",
                           "SELECT COLUMN_NAME, NULL, COLUMN_TYPE")],
                         "the server's information_schema.COLUMNS answer for tistest.f_liar has "
                         "missing or NULL cells"),
    "two of the three column attributes": ([(r"SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE",
                                             "SELECT COLUMN_NAME, DATA_TYPE")],
                                           "the server's information_schema.COLUMNS answer for "
                                           "tistest.f_liar has missing or NULL cells"),
    "a NULL primary key column": ([(r"SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE",
                                    "SELECT NULL FROM information_schema.KEY_COLUMN_USAGE")],
                                  "the server's primary key answer for tistest.f_liar has NULL "
                                  "cells"),
    "fewer row columns than asked": ([(r"SELECT `t`, `id` FROM", "SELECT `t` FROM")],
                                     "the server answered 1 columns for the 2 asked"),
    "NULL primary keys in the rows": ([(r"SELECT `t`, `id` FROM", "SELECT `t`, NULL FROM")],
                                      "the server answered NULL for primary key column id in "
                                      "row 1"),
}


@pytest.mark.parametrize("lie", list(IMPOSTORS))
def test_a_server_that_answers_nulls_or_fewer_columns_fails_the_task(tisfs, mariadb, lie):
    """Issue 10, item 18: NULL cells from information_schema, or fewer
    columns than asked, used to crash the dump. They fail the task with a
    clear reason; the daemon serves on."""
    rules, says = IMPOSTORS[lie]
    rows_table(mariadb, "f_liar", 3)
    proxy = RewritingProxy(mariadb.port, rules)
    try:
        spec = mysql_spec(mariadb, "f_liar", ['{name:"t"}']).replace(
            f"port: {mariadb.port}", f"port: {proxy.port}")
        st = tisfs.create("liar", spec, 60)
        assert proxy.rewritten, "the lie was never told"
        assert st["failed"], st
        assert says in st["errs"], st
        assert tisfs.proc.poll() is None
        assert os.listdir(tisfs.path("collections")) == ["liar"]
    finally:
        proxy.close()


def test_schema_readers_racing_rebuilds_keep_the_daemon_up(tisfs, mariadb):
    """Issue 10, item 3: every stat and read of collections/N/schema renders
    the serving generation's snapshot, shared by all readers. A reader that
    took a json-c reference on it (not atomic) could free it under another
    one, most likely while a switch drops the old generation. Readers
    hammer the file through several rebuilds; every answer is a whole
    schema of a generation that served, and the daemon stays up (run it
    under the ASan build to see a double free as one)."""
    import json
    import time
    rows_table(mariadb, "f_race", 50)
    spec = mysql_spec(mariadb, "f_race", ['{name:"t"}'])
    assert tisfs.create("race", spec)["complete"]
    schema = tisfs.path("collections", "race", "schema")
    stop, seen, errors, ops = threading.Event(), set(), [], [0]

    def reader():
        while not stop.is_set():
            try:
                os.stat(schema)
                with open(schema, encoding="utf-8") as f:
                    doc = json.loads(f.read())
                assert doc["docs"] == 50 and doc["snapshot"]["method"], doc
                seen.add(doc["generation"])
                ops[0] += 1
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))
                return
    threads = [threading.Thread(target=reader, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    served = {tisfs.json("collections", "race", "schema")["generation"]}
    # At least this many switches, with at least 500 reads around them.
    rebuilds, deadline = int(os.environ.get("TISFS_RACE_REBUILDS", "6")), time.monotonic() + 90
    try:
        while (rebuilds > 0 or ops[0] < 500) and time.monotonic() < deadline:
            tisfs.write("1", "collections", "race", "build")
            assert tisfs.wait_done("race", 60)["complete"]
            served.add(tisfs.json("collections", "race", "schema")["generation"])
            assert not errors and tisfs.proc.poll() is None, errors
            rebuilds -= 1
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert tisfs.proc.poll() is None
    assert ops[0] >= 500, ops
    assert seen <= served and len(served) > 2, (seen, served)
