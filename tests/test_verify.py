"""verify and repair against a real MariaDB: a collection is built, then the
table changes behind its back (no change event): verify names exactly the
rows that drifted, by primary key, kind and field; repair fixes them and a
second pass finds nothing; select/ sees the repaired values."""

import ctypes
import json
import os
import subprocess

import pytest

from conftest import mysql_spec, wait_for

ROWS = 2000


@pytest.fixture
def table(mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(
        "DROP TABLE IF EXISTS tistest.v_items",
        "CREATE TABLE tistest.v_items (id INT PRIMARY KEY, title VARCHAR(100), note VARCHAR(100),"
        " price DECIMAL(10,2), born DATE, raw VARBINARY(8)) DEFAULT CHARSET=utf8mb4",
        "INSERT INTO tistest.v_items SELECT seq, CONCAT('item ', seq), CONCAT('note ', seq),"
        f" seq / 4, '2020-01-01' + INTERVAL seq DAY, UNHEX('00FF') FROM seq_1_to_{ROWS}",
        db="tistest")
    return mysql_spec(mariadb, "v_items", ['{name:"title", token:"ik"}',
                                           '{name:"note", search:false}', '{name:"price"}',
                                           '{name:"born"}', '{name:"raw"}'])


def verify(tisfs, name, what="1"):
    with open(tisfs.path("collections", name, "verify"), "w") as f:
        f.write(what)
    return wait_for(lambda: (lambda r: r if r["state"] in ("done", "failed") else None)(
        tisfs.json("collections", name, "verify")), 120, what="the verification")


def drift(mariadb):
    """Changes made behind the collection's back, and what verify must say."""
    mariadb.execute(
        "UPDATE tistest.v_items SET title = 'changed title' WHERE id IN (10, 11)",
        "UPDATE tistest.v_items SET note = 'changed note' WHERE id = 20",
        "UPDATE tistest.v_items SET price = 99.99, born = '1999-12-31' WHERE id = 21",
        "UPDATE tistest.v_items SET note = NULL WHERE id = 30",
        "UPDATE tistest.v_items SET title = '' WHERE id = 31",
        "UPDATE tistest.v_items SET raw = UNHEX('00FE') WHERE id = 32",
        "DELETE FROM tistest.v_items WHERE id IN (40, 41, 42)",
        f"INSERT INTO tistest.v_items VALUES ({ROWS + 1}, 'brand new', NULL, 1.5, NULL, NULL)",
        db="tistest")
    return {
        (10, "differ"): ["title"], (11, "differ"): ["title"], (20, "differ"): ["note"],
        (21, "differ"): ["price", "born"], (30, "differ"): ["note"], (31, "differ"): ["title"],
        (32, "differ"): ["raw"],
        (40, "extra"): [], (41, "extra"): [], (42, "extra"): [],
        (ROWS + 1, "missing"): [],
    }


def samples(result):
    return {(s["pk"]["id"], s["kind"]): s["fields"] for s in result["samples"]}


def test_an_unchanged_collection_verifies_clean(tisfs, table):
    assert tisfs.create("v", table)["complete"]
    r = verify(tisfs, "v")
    assert r["state"] == "done", r
    assert (r["checked"], r["missing"], r["extra"], r["differ"], r["newer"]) == (ROWS, 0, 0, 0, 0)
    assert r["samples"] == [] and r["repaired"] == 0 and r["snapshot"]["method"]
    st = tisfs.status("v")
    assert st["kind"] == "verify" and st["complete"] and st["taskid"] == r["taskid"]
    logs = tisfs.read("collections", "v", "logs")
    assert f"verify: {ROWS} rows checked: 0 missing, 0 extra, 0 differ, 0 newer" in logs
    # The server's checksums of every chunk equal the daemon's: no row was
    # fetched to compare (every column type of the table hashes alike).
    assert "compared 41 chunks of 50 key values by checksum: 0 differ" in logs


def test_a_verification_then_a_rebuild_then_another(tisfs, table):
    """A finished verification let go of its generation only when the next
    one freed it: after a rebuild's switch it held the old generation's last
    reference, whose pages it then released after freeing it (a use after
    free), and whose files stayed on disk until then."""
    assert tisfs.create("vr", table)["complete"]
    assert verify(tisfs, "vr")["state"] == "done"
    gens = os.path.join(tisfs.data, "collections", "vr")
    first = [d for d in os.listdir(gens) if d.startswith("gen-")]
    assert len(first) == 1
    tisfs.write("1", "collections", "vr", "build")
    wait_for(lambda: tisfs.status("vr")["kind"] == "build" and tisfs.status("vr")["complete"],
             120, what="the rebuild")
    wait_for(lambda: [d for d in os.listdir(gens) if d.startswith("gen-")] not in ([], first)
             and first[0] not in os.listdir(gens), 30, what="the old generation's files to go")
    r = verify(tisfs, "vr")
    assert r["state"] == "done" and r["missing"] + r["extra"] + r["differ"] == 0, r


def test_drift_is_named_and_repaired(tisfs, mariadb, table):
    assert tisfs.create("v", table)["complete"]
    want = drift(mariadb)
    r = verify(tisfs, "v")
    assert r["state"] == "done", r
    assert (r["missing"], r["extra"], r["differ"], r["newer"]) == (1, 3, 7, 0)
    assert r["checked"] == ROWS - 3 + 1
    assert samples(r) == want
    logs = tisfs.read("collections", "v", "logs")
    assert "compared 41 chunks of 50 key values by checksum: 2 differ" in logs
    # The server hashed its two halves of the keys at once, each on its own
    # connection inside a transaction at the one snapshot.
    assert "2 connections read the snapshot at binlog" in logs
    assert "(the server's sums in" in logs and "over 2 connections" in logs
    # Verification alone changes nothing.
    q = "q=title:changed&fl=id"
    assert tisfs.json("collections", "v", "select", q)["response"]["numFound"] == 0
    r = verify(tisfs, "v", "repair\n")
    assert r["state"] == "done", r
    assert r["repaired"] == 11
    # What the first pass found stays in the result.
    assert (r["found"]["missing"], r["found"]["extra"], r["found"]["differ"]) == (1, 3, 7)
    assert samples(r["found"]) == want
    # The result is the second pass's, over the rows the first repaired:
    # nothing left. It read the 8 of the 11 that the table has.
    assert (r["missing"], r["extra"], r["differ"]) == (0, 0, 0)
    assert r["checked"] == 8
    logs = tisfs.read("collections", "v", "logs")
    # The first pass looked into the 2 chunks by the hash of each row and read
    # only the 8 rows the table has that differ (3 were extra: no row to read).
    assert "looked into 2 chunks by the hash of each row: 48 rows, 8 of them read whole" in logs
    assert "checked again the 11 rows the first pass repaired" in logs
    assert sorted(d["id"] for d in tisfs.json("collections", "v", "select", q)["response"]["docs"]) \
        == [10, 11]
    for gone in (40, 41, 42):
        assert tisfs.json("collections", "v", "select", f"q=id:{gone}")["response"]["numFound"] == 0
    doc = tisfs.json("collections", "v", "select", f"q=id:{ROWS + 1}")["response"]["docs"][0]
    assert doc["title"] == "brand new" and doc["note"] is None
    doc = tisfs.json("collections", "v", "select", "q=id:30")["response"]["docs"][0]
    assert doc["note"] is None
    assert verify(tisfs, "v")["differ"] == 0


class Val(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.c_char_p)]


def lmdb_write(gen_dir, db, key, value=None):
    """Puts (or, value None, deletes) key in a generation's database db
    through liblmdb, the daemon stopped."""
    lib = ctypes.CDLL("liblmdb.so.0")
    env, txn, dbi = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint()
    assert lib.mdb_env_create(ctypes.byref(env)) == 0
    lib.mdb_env_set_maxdbs(env, 16)
    try:
        assert lib.mdb_env_open(env, gen_dir.encode(), 0, 0o600) == 0
        assert lib.mdb_txn_begin(env, None, 0, ctypes.byref(txn)) == 0
        assert lib.mdb_dbi_open(txn, db, 0, ctypes.byref(dbi)) == 0
        k = Val(len(key), key)
        if value is None:
            assert lib.mdb_del(txn, dbi, ctypes.byref(k), None) == 0
        else:
            v = Val(len(value), value)
            assert lib.mdb_put(txn, dbi, ctypes.byref(k), ctypes.byref(v), 0) == 0
        assert lib.mdb_txn_commit(txn) == 0
    finally:
        lib.mdb_env_close(env)


def forget_kept_sums(gen_dir):
    """What a generation written before chunk sums were kept looks like:
    no meta "rowsums"."""
    lmdb_write(gen_dir, b"meta", b"rowsums")


def test_kept_sums_that_are_off_are_said_and_cost_no_false_drift(tisfs, mariadb, table):
    """Kept sums that are not their documents' (a fault, not drift) send
    the chunk to be looked into: its rows compare equal, no difference is
    reported, and the log says the sums are off; a repair corrects them, and
    the next verification finds every chunk equal."""
    assert tisfs.create("v", table)["complete"]
    coll = os.path.join(tisfs.data, "collections", "v")
    gen = [d for d in os.listdir(coll) if d.startswith("gen-")][0]
    tisfs.stop()
    chunk = (2 ^ (1 << 63)).to_bytes(8, "big")  # ids 100..149, as sums_key has it
    lmdb_write(os.path.join(coll, gen), b"sums", chunk,
               (51).to_bytes(8, "little") + (12345).to_bytes(8, "little") + bytes(4))
    tisfs.start()
    r = verify(tisfs, "v")
    assert r["state"] == "done", r
    assert (r["checked"], r["missing"], r["extra"], r["differ"]) == (ROWS, 0, 0, 0), r
    logs = tisfs.read("collections", "v", "logs")
    assert "41 chunks of 50 key values by checksum: 1 differ" in logs
    assert "the kept sums of 1 of the 1 chunks looked into are not their documents' (the rows " \
        "were compared all the same): a repair corrects them" in logs
    r = verify(tisfs, "v", "repair")
    assert (r["repaired"], r["found"]["differ"], r["differ"]) == (0, 0, 0), r
    assert "(the rows were compared all the same): corrected with the repairs" in \
        tisfs.read("collections", "v", "logs")
    r = verify(tisfs, "v")  # the sums are the documents' again: nothing to look into
    assert (r["checked"], r["differ"]) == (ROWS, 0), r
    assert "41 chunks of 50 key values by checksum: 0 differ" in \
        tisfs.read("collections", "v", "logs")


def test_a_generation_without_kept_sums_is_summed_from_its_documents(tisfs, mariadb, table):
    """A generation that keeps no chunk sums (written by an earlier version)
    is verified and repaired exactly the same, its documents summed."""
    assert tisfs.create("v", table)["complete"]
    coll = os.path.join(tisfs.data, "collections", "v")
    gen = [d for d in os.listdir(coll) if d.startswith("gen-")][0]
    tisfs.stop()
    forget_kept_sums(os.path.join(coll, gen))
    tisfs.start()
    want = drift(mariadb)
    r = verify(tisfs, "v", "repair")
    assert r["state"] == "done", r
    assert samples(r["found"]) == want and r["repaired"] == 11
    assert (r["missing"], r["extra"], r["differ"]) == (0, 0, 0)
    logs = tisfs.read("collections", "v", "logs")
    assert "41 chunks of 50 key values by checksum: 2 differ" in logs
    assert "the daemon's documents summed in" in logs
    assert "kept sums read" not in logs
    r = verify(tisfs, "v")
    assert (r["checked"], r["missing"], r["extra"], r["differ"]) == (ROWS - 3 + 1, 0, 0, 0), r


def test_refusals_and_failures(tisfs, mariadb, table):
    os.mkdir(tisfs.path("collections", "n"))
    with pytest.raises(OSError):  # no index yet: refused at open
        with open(tisfs.path("collections", "n", "verify"), "w") as f:
            f.write("1")
    assert tisfs.json("collections", "n", "verify")["state"] == "none"
    assert tisfs.create("v", table)["complete"]
    mariadb.execute("ALTER TABLE tistest.v_items DROP COLUMN note", db="tistest")
    r = verify(tisfs, "v")
    assert r["state"] == "failed" and 'column "note" not found' in r["errs"], r
    assert 'column "note" not found' in tisfs.read("collections", "v", "logs")


def test_rest_verify(tisfs, table, tmp_path):
    from conftest import Http, free_port, TISFS
    assert tisfs.create("v", table)["complete"]
    tisfs.stop()
    port = free_port()
    proc = subprocess.Popen([TISFS, "-f", "--no-mount", "--http", f"127.0.0.1:{port}",
                             "--data", tisfs.data], stderr=subprocess.DEVNULL)
    try:
        http = Http(f"127.0.0.1:{port}")
        wait_for(lambda: _answers(http), 20, what="the listener")
        r = http.session.post(f"{http.base}/solr/config/config.ajax?action=collection_action"
                              "&emethod=do_verify", data='{indexName: "v"}').json()
        assert r["success"], r
        task = r["bizresult"]["taskid"]
        st = wait_for(lambda: (lambda s: s if s["complete"] or s["failed"] else None)(
            http.session.post(f"{http.base}/solr/config/config.ajax?action=collection_action"
                              "&emethod=get_task_status", data=f"{{taskid: {task}}}")
            .json()["bizresult"]), 60, what="the verification over REST")
        assert st["kind"] == "verify" and st["checked"] == ROWS and st["differ"] == 0
    finally:
        proc.terminate()
        proc.wait(30)
        tisfs.start()


def _answers(http):
    try:
        return http.session.get(f"{http.base}/metrics").status_code == 200
    except Exception:  # noqa: BLE001 - not listening yet
        return False


def test_rm_r_stops_a_running_verification_at_once(tisfs, mariadb):
    import time
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute("DROP TABLE IF EXISTS tistest.v_big",
                    "CREATE TABLE tistest.v_big (id INT PRIMARY KEY, body VARCHAR(200))",
                    "INSERT INTO tistest.v_big SELECT seq, REPEAT('lorem ipsum ', 10)"
                    " FROM seq_1_to_300000", db="tistest")
    assert tisfs.create("vb", mysql_spec(mariadb, "v_big", ['{name:"body"}']), 300)["complete"]
    with open(tisfs.path("collections", "vb", "verify"), "w") as f:
        f.write("1")
    wait_for(lambda: tisfs.json("collections", "vb", "verify")["checked"] > 0, 60,
             what="the verification to start")
    t0 = time.monotonic()
    subprocess.run(["rm", "-r", tisfs.path("collections", "vb")], check=True)
    assert time.monotonic() - t0 < 2.0
    assert os.listdir(tisfs.path("collections")) == []


def test_rm_r_stops_a_verification_blocked_on_the_server(tisfs, mariadb):
    """A verification waiting on the server (here a table another session
    has locked; in life the checksums' GROUP BY, which answers only when
    done) stops at rm -r at once: its connections are cut. (It waited for
    the server, as long as the lock was held.)"""
    import time
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute("DROP TABLE IF EXISTS tistest.v_lock",
                    "CREATE TABLE tistest.v_lock (id INT PRIMARY KEY, body VARCHAR(20))",
                    "INSERT INTO tistest.v_lock SELECT seq, 'x' FROM seq_1_to_100", db="tistest")
    assert tisfs.create("vl", mysql_spec(mariadb, "v_lock", ['{name:"body"}']))["complete"]
    locker = mariadb.connect("tistest")
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES v_lock WRITE")
        with open(tisfs.path("collections", "vl", "verify"), "w") as f:
            f.write("1")
        wait_for(lambda: any("metadata lock" in (r[6] or "") and r[1] == "tis"
                             for r in mariadb.query("SHOW FULL PROCESSLIST")
                             if r[0] != locker.thread_id()), 60,
                 what="the verification to wait on the locked table")
        t0 = time.monotonic()
        rm = subprocess.Popen(["rm", "-r", tisfs.path("collections", "vl")])
        try:
            rc = rm.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None   # still waiting on the server: the lock's release frees it
    finally:
        locker.close()
    took = time.monotonic() - t0
    if rc is None:
        rm.wait(60)
    assert rc == 0 and took < 2.0, f"rm -r took {took:.1f} s"
    assert "vl" not in os.listdir(tisfs.path("collections"))


def test_a_streaming_channel_is_not_drift(kafka, tisfs, mariadb):
    """While the table changes and its Debezium MySQL events stream in
    (versioned by real binlog positions), verify finds no difference: rows
    changed after its snapshot count as newer."""
    import threading
    from test_incr import Stream, build, caught_up
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    s = Stream(mariadb, kafka, "v_stream", "t-vstream", proto="debezium-mysql")
    s.seed([(i, f"row {i}", "", i) for i in range(1, 501)])
    build(tisfs, mariadb, kafka, s, "vs", protocol="debezium")
    stop = threading.Event()
    errors = []

    def load():
        n = 0
        try:
            while not stop.is_set():
                n += 1
                s.update(1 + n % 500, n=10_000 + n)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
    t = threading.Thread(target=load)
    t.start()
    try:
        wait_for(lambda: tisfs.json("collections", "vs", "incr_status")["applied"] >= 20, 60,
                 what="the load to stream")
        r = verify(tisfs, "vs")
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert r["state"] == "done", r
    assert (r["missing"], r["extra"], r["differ"]) == (0, 0, 0), r["samples"][:5]
    assert r["checked"] == 500
    caught_up(tisfs, "vs", kafka, s.topic)
    r = verify(tisfs, "vs")
    # The stream's events carry the binlog position after their commit
    # (SHOW MASTER STATUS), Debezium's carry the position of the event: the
    # last change before the snapshot sits exactly at it and reads as newer.
    assert (r["missing"], r["extra"], r["differ"]) == (0, 0, 0) and r["newer"] <= 1, r


def test_every_column_type_hashes_alike_on_both_sides(tisfs, mariadb):
    """The server's row hash (over CAST(c AS BINARY)) equals the daemon's
    (over the stored bytes) for every column type: no chunk differs."""
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(
        "DROP TABLE IF EXISTS tistest.v_types",
        "CREATE TABLE tistest.v_types (id BIGINT PRIMARY KEY, u BIGINT UNSIGNED, d DECIMAL(12,2),"
        " db DOUBLE, f FLOAT, dt DATE, dtm DATETIME(3), ts TIMESTAMP NULL, tm TIME, y YEAR,"
        " b BIT(8), e ENUM('a','b'), st SET('x','y'), v VARCHAR(20), vb VARBINARY(8), tx TEXT,"
        " j JSON) DEFAULT CHARSET=utf8mb4",
        "INSERT INTO tistest.v_types VALUES"
        " (-5, 18446744073709551615, -12.50, 1.5e-300, 3.14159, '2020-02-29',"
        "  '2020-01-01 10:00:00.123', '2021-05-05 01:02:03', '-838:59:59', 2026, b'10100101',"
        "  'b', 'x,y', 'héllo', 0x00FF, 'text', '{\"a\": 1}'),"
        " (2, 0, 0.10, 0.1, 0.1, '1000-01-01', '9999-12-31 23:59:59', NULL, '00:00:00', 1901,"
        "  b'0', 'a', '', '', '', '', '[]'),"
        " (1500, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
        "  NULL, NULL, NULL)", db="tistest")
    cols = ["u", "d", "db", "f", "dt", "dtm", "ts", "tm", "y", "b", "e", "st", "v", "vb", "tx", "j"]
    spec = mysql_spec(mariadb, "v_types", [f'{{name:"{c}"}}' for c in cols])
    assert tisfs.create("ty", spec)["complete"]
    r = verify(tisfs, "ty")
    assert r["state"] == "done" and (r["checked"], r["differ"], r["missing"], r["extra"]) == \
        (3, 0, 0, 0), r
    assert "compared 2 chunks of 50 key values by checksum: 0 differ" in \
        tisfs.read("collections", "ty", "logs")


def test_a_text_primary_key_is_compared_row_by_row(tisfs, mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute("DROP TABLE IF EXISTS tistest.v_text",
                    "CREATE TABLE tistest.v_text (code VARCHAR(20) PRIMARY KEY, t VARCHAR(20))",
                    "INSERT INTO tistest.v_text VALUES ('a', 'x'), ('B', 'y'), ('c', 'z')",
                    db="tistest")
    assert tisfs.create("tx", mysql_spec(mariadb, "v_text", ['{name:"t"}']))["complete"]
    mariadb.execute("UPDATE tistest.v_text SET t = 'changed' WHERE code = 'B'", db="tistest")
    r = verify(tisfs, "tx")
    assert (r["checked"], r["differ"]) == (3, 1) and r["samples"][0]["pk"] == {"code": "B"}
    assert "by checksum" not in tisfs.read("collections", "tx", "logs")


# A server whose snapshots cannot be shown to be one: every connection's
# binlog_snapshot_position is its own connection id (never equal), or the
# server names no binlog position at all (no binlog).
UNALIGNED = {
    "positions that keep differing": (
        "SELECT 'binlog_snapshot_file', 'mysql-bin.000001' UNION ALL "
        "SELECT 'binlog_snapshot_position', CONNECTION_ID()",
        "one connection reads the snapshot: commits kept falling between the snapshots "
        "(5 tries)"),
    "no binlog": (
        "SELECT 'binlog_snapshot_file', '' UNION ALL SELECT 'binlog_snapshot_position', 0",
        "one connection reads the snapshot: the server names no binlog position for a "
        "snapshot"),
}


def test_a_row_the_server_cannot_hash_is_read_whole_not_lost(tisfs, mariadb, table):
    """A row whose hash the server answers NULL (CONCAT_WS longer than
    max_allowed_packet; here a proxy makes it so for id 10) is read whole
    and compared, not taken for missing: its document is not counted as
    extra, and a repair leaves it in place."""
    from test_faults import RewritingProxy
    proxy = RewritingProxy(mariadb.port, [(r"^SELECT `id`, CRC32\((.*)\) FROM (.*) WHERE (.*)$",
                                           r"SELECT `id`, IF(`id` = 10, NULL, CRC32(\1)) "
                                           r"FROM \2 WHERE \3")])
    try:
        spec = table.replace(f"port: {mariadb.port}", f"port: {proxy.port}")
        assert tisfs.create("v", spec)["complete"]
        mariadb.execute("UPDATE tistest.v_items SET title = 'changed title' WHERE id = 11",
                        db="tistest")
        r = verify(tisfs, "v", "repair")
        assert proxy.rewritten, "the lie was never told"
        assert r["state"] == "done", r
        assert samples(r["found"]) == {(11, "differ"): ["title"]} and r["repaired"] == 1
        logs = tisfs.read("collections", "v", "logs")
        assert "looked into 1 chunks by the hash of each row: 49 rows, 2 of them read whole" \
            in logs
        assert tisfs.json("collections", "v", "select", "q=id:10")["response"]["numFound"] == 1
    finally:
        proxy.close()


@pytest.mark.parametrize("case", list(UNALIGNED))
def test_snapshots_that_cannot_be_aligned_are_read_on_one_connection(tisfs, mariadb, table,
                                                                     case):
    """The checksums go over two connections only when both transactions
    name the same binlog position (then they see the same commits). When
    they never do, or the server keeps no binlog, the main connection reads
    alone, the log says why, and the result is as exact as ever."""
    from test_faults import RewritingProxy
    answer, says = UNALIGNED[case]
    proxy = RewritingProxy(mariadb.port, [(r"^SHOW STATUS LIKE 'binlog_snapshot_%'$", answer)])
    try:
        spec = table.replace(f"port: {mariadb.port}", f"port: {proxy.port}")
        assert tisfs.create("v", spec)["complete"]
        want = drift(mariadb)
        r = verify(tisfs, "v", "repair")
        assert proxy.rewritten, "the lie was never told"
        assert r["state"] == "done", r
        assert samples(r["found"]) == want and r["repaired"] == 11
        assert (r["missing"], r["extra"], r["differ"]) == (0, 0, 0)
        logs = tisfs.read("collections", "v", "logs")
        assert says in logs
        assert "connections read the snapshot" not in logs
        assert "compared 41 chunks of 50 key values by checksum: 2 differ (the server's sums " \
            "in" in logs and "over 1 connection," in logs
        assert verify(tisfs, "v")["differ"] == 0
    finally:
        proxy.close()
