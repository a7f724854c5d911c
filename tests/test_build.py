"""Full builds from a real MariaDB table through the mount: documents,
progress, persistence, interruption, concurrency, generations, deletion."""

import base64
import decimal
import errno
import json
import os
import select
import signal
import subprocess
import threading
import time

import pytest

from conftest import TISFS_DUMP, mysql_spec, wait_for

BIG_ROWS = 300_000


@pytest.fixture(scope="session")
def db(mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    return mariadb


@pytest.fixture(scope="session")
def big(db):
    """A table large enough that a build takes a noticeable moment."""
    db.execute("DROP TABLE IF EXISTS tistest.big",
               "CREATE TABLE tistest.big (id INT PRIMARY KEY, name VARCHAR(40), body VARCHAR(200))",
               "INSERT INTO tistest.big SELECT seq, CONCAT('name ', seq), REPEAT('lorem ipsum ', 8)"
               f" FROM seq_1_to_{BIG_ROWS}", db="tistest")
    return mysql_spec(db, "big", ['{name:"name", token:"ik"}', '{name:"body"}'])


LARGE_TEXT = ("长文本 large text ❤ " * 40000)[:600000]

TYPED_ROWS = [
    (1, 18446744073709551615, -9223372036854775808, -128, "中华人民共和国", LARGE_TEXT,
     "12345678.90", 3.5, "1953-09-02", "2026-11-24 10:00:00", "a", b"\x00\xffbin", 5, 2026),
    (2, 0, 42, 127, "emoji 😀 and ＦＵＬＬ ｗｉｄｔｈ", "", "-0.01", -1e-300, "2000-02-29",
     "1999-12-31 23:59:59", "b", b"", 255, 1901),
    (3, None, None, None, None, None, None, None, None, None, None, None, None, None),
    (4, 7, 0, 0, "tab\tnew\nline 'quote' \"dq\" back\\slash", "x", "0.00", 0.0, "1970-01-01",
     "1970-01-01 00:00:01", "a", b"\x01", 0, 2000),
]


@pytest.fixture(scope="session")
def typed(db):
    db.execute(
        "DROP TABLE IF EXISTS tistest.typed",
        """CREATE TABLE tistest.typed (
            id INT PRIMARY KEY, big BIGINT UNSIGNED, neg BIGINT, tiny TINYINT,
            name VARCHAR(100), body MEDIUMTEXT, price DECIMAL(12,2), ratio DOUBLE,
            born DATE, seen DATETIME, tag ENUM('a','b'), raw VARBINARY(16), flags BIT(8),
            yr YEAR) DEFAULT CHARSET=utf8mb4""")
    con = db.connect("tistest")
    with con.cursor() as cur:
        cur.executemany("INSERT INTO typed VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        TYPED_ROWS)
    con.close()
    cols = ["id", "big", "neg", "tiny", "name", "body", "price", "ratio", "born", "seen", "tag",
            "raw", "flags", "yr"]
    return mysql_spec(db, "typed", ['{name:"%s"}' % c for c in cols[1:]])


def expected_json(value):
    """The JSON form tisfs gives a value that pymysql returned."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (decimal.Decimal, int, float, str)) or value is None:
        return value
    return str(value)  # date, datetime


def test_documents_match_the_table(tisfs, db, typed):
    st = tisfs.create("typed", typed)
    assert st["complete"], st["errs"]
    out = subprocess.check_output([TISFS_DUMP, "--data",
                                   tisfs.data, "typed"], text=True)
    docs = {d["id"]: d for d in (json.loads(line, parse_float=decimal.Decimal)
                                 for line in out.splitlines())}
    con = db.connect("tistest")
    with con.cursor() as cur:
        cur.execute("SELECT big, neg, tiny, name, body, price, ratio, born, seen, tag, raw,"
                    " flags, yr, id FROM typed")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    con.close()
    assert len(docs) == len(rows) == len(TYPED_ROWS)
    for row in rows:
        doc = docs[row[-1]]
        assert set(doc) == set(names)
        for name, value in zip(names, row):
            if name == "flags" and value is not None:
                value = int.from_bytes(value, "big")
            if name == "ratio" and value is not None:
                assert float(doc[name]) == value
                continue
            assert doc[name] == expected_json(value), (row[-1], name)
            if value is not None and name in ("big", "neg", "tiny", "flags", "yr", "id"):
                assert isinstance(doc[name], int), name
    assert docs[1]["body"] == LARGE_TEXT
    assert str(docs[1]["price"]) == "12345678.90"   # exact, not a rounded float
    schema = tisfs.json("collections", "typed", "schema")
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types == {"big": "uint", "neg": "int", "tiny": "int", "name": "string",
                     "body": "string", "price": "decimal", "ratio": "float", "born": "date",
                     "seen": "datetime", "tag": "string", "raw": "binary", "flags": "bit",
                     "yr": "year", "id": "int"}
    assert schema["primaryKey"] == ["id"] and schema["docs"] == 4
    assert {f["name"]: f["token"] for f in schema["fields"]}["name"] == "ik"


def test_only_listed_columns_plus_primary_key(tisfs, db):
    db.execute("DROP TABLE IF EXISTS tistest.comp",
               "CREATE TABLE tistest.comp (a INT, b VARCHAR(10), secret VARCHAR(10), note TEXT,"
               " PRIMARY KEY (b, a))",
               "INSERT INTO tistest.comp VALUES (1,'x','s1','n1'), (2,'x','s2','n2'),"
               " (1,'y','s3','n3')")
    st = tisfs.create("comp", mysql_spec(db, "comp", ['{name:"NOTE", store:true}']))
    assert st["complete"], st["errs"]
    docs = tisfs.docs("comp")
    assert sorted((d["b"], d["a"], d["note"]) for d in docs) == \
        [("x", 1, "n1"), ("x", 2, "n2"), ("y", 1, "n3")]
    assert all("secret" not in d for d in docs)
    assert tisfs.json("collections", "comp", "schema")["primaryKey"] == ["b", "a"]


@pytest.mark.parametrize("table,cols,expect", [
    ("nosuch", ['{name:"a"}'], "table tistest.nosuch not found"),
    ("small", ['{name:"v"}', '{name:"ghost"}'], 'column "ghost" not found in table tistest.small'),
    ("nopk", ['{name:"v"}'], "table tistest.nopk has no primary key"),
])
def test_source_errors_fail_the_task(tisfs, db, table, cols, expect):
    db.execute("CREATE TABLE IF NOT EXISTS tistest.small (id INT PRIMARY KEY, v VARCHAR(10))",
               "CREATE TABLE IF NOT EXISTS tistest.nopk (v VARCHAR(10))")
    st = tisfs.create("c", mysql_spec(db, table, cols))
    assert st["failed"] and st["faild"] and not st["complete"]
    assert st["stage"] == "dump" and st["errs"].startswith("dump: ")
    assert expect in st["errs"], st["errs"]
    assert expect in tisfs.read("collections", "c", "logs")
    assert [s["state"] for s in st["stages"]] == ["failed", "pending", "pending", "pending"]
    # Nothing is served and nothing is left on disk.
    assert tisfs.json("collections", "c", "schema")["generation"] is None
    cdir = os.path.join(tisfs.data, "collections", "c")
    assert not os.path.isdir(cdir) or not [d for d in os.listdir(cdir) if d.startswith("gen-")]


def test_wrong_password_is_reported(tisfs, db):
    spec = mysql_spec(db, "small", ['{name:"v"}']).replace('"tispw"', '"wrong"')
    st = tisfs.create("c", spec)
    assert st["failed"] and "Access denied" in st["errs"]
    assert "wrong" not in tisfs.read("collections", "c", "create")  # masked
    assert "******" in tisfs.read("collections", "c", "create")


def test_progress_and_stages(tisfs, big):
    st = tisfs.create("big", big)
    assert st["complete"] and not st["failed"] and st["errs"] == ""
    assert st["progress"]["rows"] == BIG_ROWS and st["progress"]["total"] == BIG_ROWS
    assert st["progress"]["rows_per_sec"] > 0 and st["progress"]["eta_sec"] == 0
    assert [s["name"] for s in st["stages"]] == ["dump", "join", "indexBuild", "indexBackflow"]
    assert all(s["state"] == "done" for s in st["stages"])
    assert st["stages"][0]["rows"] == BIG_ROWS and st["stages"][0]["seconds"] > 0
    assert st["started"] and st["finished"] and st["generation"] == st["taskid"]
    logs = tisfs.read("collections", "big", "logs")
    assert "server estimates" in logs and f"dumped {BIG_ROWS} rows" in logs
    assert tisfs.json("collections", "big", "schema")["docs"] == BIG_ROWS
    # The collection's log is every task's lines, each stamped with its task.
    task_lines = tisfs.read("tasks", str(st["taskid"]), "logs").splitlines()
    stamp = f"[task {st['taskid']} "
    assert [l.replace(stamp, "[", 1) for l in logs.splitlines()] == task_lines
    assert tisfs.json("tasks", str(st["taskid"]), "status")["complete"]


def test_status_is_live_during_the_dump(tisfs, big):
    os.mkdir(tisfs.path("collections", "big"))
    tisfs.write(big, "collections", "big", "create")
    seen = wait_for(lambda: (lambda s: s if s["stage"] == "dump" and 0 < s["progress"]["rows"]
                             < BIG_ROWS else None)(tisfs.status("big")), 60,
                    what="a status in the middle of the dump")
    assert seen["stages"][0]["state"] == "running" and not seen["complete"]
    assert seen["progress"]["total"] >= seen["progress"]["rows"]
    assert seen["finished"] is None
    assert tisfs.wait_done("big")["complete"]


def test_create_twice_is_eexist(tisfs, db):
    spec = mysql_spec(db, "small", ['{name:"v"}'])
    db.execute("CREATE TABLE IF NOT EXISTS tistest.small (id INT PRIMARY KEY, v VARCHAR(10))")
    assert tisfs.create("c", spec)["complete"]
    with pytest.raises(OSError) as e:
        tisfs.write(spec, "collections", "c", "create")
    assert e.value.errno == errno.EEXIST


def test_restart_keeps_everything(tisfs, db):
    db.execute("CREATE TABLE IF NOT EXISTS tistest.small (id INT PRIMARY KEY, v VARCHAR(10))",
               "REPLACE INTO tistest.small VALUES (1, 'one'), (2, 'two')")
    st = tisfs.create("c", mysql_spec(db, "small", ['{name:"v"}']))
    os.mkdir(tisfs.path("collections", "reserved"))
    before = {f: tisfs.read("collections", "c", f) for f in ("create", "status", "logs", "schema")}
    docs = tisfs.docs("c")
    tisfs.restart()
    assert sorted(os.listdir(tisfs.path("collections"))) == ["c", "reserved"]
    for f, text in before.items():
        assert tisfs.read("collections", "c", f) == text, f
    assert tisfs.docs("c") == docs
    assert os.listdir(tisfs.path("tasks")) == [str(st["taskid"])]
    # And it still builds after the restart.
    tisfs.write("go", "collections", "c", "build")
    assert tisfs.wait_done("c")["complete"]


def interrupt_mid_dump(tisfs, name, sig):
    tisfs.write("1", "collections", name, "build")
    st = wait_for(lambda: (lambda s: s if s["stage"] == "dump" and s["progress"]["rows"] > 0
                           and not s["complete"] else None)(tisfs.status(name)), 60,
                  what="the rebuild's dump to be under way")
    tisfs.restart(sig)
    return st["taskid"]


@pytest.mark.parametrize("sig,reason", [
    (signal.SIGKILL, "interrupted: the daemon stopped while this task was running"),
    (signal.SIGTERM, "interrupted: the daemon is shutting down"),
])
def test_interrupted_task_keeps_serving_last_generation(tisfs, big, sig, reason):
    first = tisfs.create("big", big)
    assert first["complete"]
    taskid = interrupt_mid_dump(tisfs, "big", sig)
    st = tisfs.json("tasks", str(taskid), "status")
    assert st["failed"] and not st["complete"]
    assert st["errs"] == "dump: " + reason
    # Meanwhile the old generation serves.
    schema = tisfs.json("collections", "big", "schema")
    assert schema["generation"] == first["generation"] and schema["docs"] == BIG_ROWS
    # The interrupted build starts again by itself, and says so.
    again = tisfs.wait_done("big")
    assert again["taskid"] > taskid and again["complete"], again
    logs = tisfs.read("collections", "big", "logs")
    assert "FAILED" in logs and "resuming: task interrupted when the daemon stopped" in logs
    assert f"task {taskid} was interrupted when the daemon stopped" in tisfs.read("logs")
    assert tisfs.json("collections", "big", "schema")["generation"] == again["taskid"]
    gens = [d for d in os.listdir(os.path.join(tisfs.data, "collections", "big"))
            if d.startswith("gen-")]
    assert gens == ["gen-%d" % again["taskid"]]


def test_one_task_per_collection(tisfs, big, db):
    os.mkdir(tisfs.path("collections", "big"))
    tisfs.write(big, "collections", "big", "create")
    with pytest.raises(OSError) as e:
        tisfs.write("1", "collections", "big", "build")
    assert e.value.errno == errno.EBUSY
    with pytest.raises(OSError) as e:
        tisfs.write(big, "collections", "big", "create")
    assert e.value.errno == errno.EBUSY
    # Another collection builds meanwhile.
    db.execute("CREATE TABLE IF NOT EXISTS tistest.small (id INT PRIMARY KEY, v VARCHAR(10))")
    other = tisfs.create("other", mysql_spec(db, "small", ['{name:"v"}']))
    assert other["complete"]
    st = tisfs.wait_done("big")
    assert st["complete"]
    assert "refused a build request" in tisfs.read("collections", "big", "logs")


def test_rebuild_switches_generations_without_failed_reads(tisfs, big):
    first = tisfs.create("big", big)
    stop = threading.Event()
    seen, errors = set(), []

    def reader():
        while not stop.is_set():
            try:
                schema = tisfs.json("collections", "big", "schema")
                assert schema["docs"] == BIG_ROWS, schema["docs"]
                seen.add(schema["generation"])
                tisfs.status("big")
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                errors.append(repr(e))

    t = threading.Thread(target=reader)
    t.start()
    try:
        tisfs.write("1", "collections", "big", "build")
        second = tisfs.wait_done("big")
    finally:
        stop.set()
        t.join()
    assert second["complete"] and second["generation"] != first["generation"]
    assert errors == []
    assert first["generation"] in seen
    assert tisfs.json("collections", "big", "schema")["generation"] == second["generation"]
    old = os.path.join(tisfs.data, "collections", "big", "gen-%d" % first["generation"])
    wait_for(lambda: not os.path.exists(old), 10, what="the old generation to be freed")


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total


def test_rm_r_deletes_and_frees_space(tisfs, big, db):
    db.execute("CREATE TABLE IF NOT EXISTS tistest.small (id INT PRIMARY KEY, v VARCHAR(10))")
    st = tisfs.create("big", big)
    keep = tisfs.create("keep", mysql_spec(db, "small", ['{name:"v"}']))
    coll_dir = os.path.join(tisfs.data, "collections", "big")
    assert du(coll_dir) > 20_000_000
    subprocess.run(["rm", "-r", tisfs.path("collections", "big")], check=True)
    assert os.listdir(tisfs.path("collections")) == ["keep"]
    assert not os.path.exists(coll_dir)
    assert os.listdir(tisfs.path("tasks")) == [str(keep["taskid"])]
    assert not os.path.exists(tisfs.path("tasks", str(st["taskid"])))
    assert du(tisfs.data) < 20_000_000
    # The name is free again.
    os.mkdir(tisfs.path("collections", "big"))


def test_rm_r_cancels_a_running_build(tisfs, big):
    os.mkdir(tisfs.path("collections", "big"))
    tisfs.write(big, "collections", "big", "create")
    wait_for(lambda: tisfs.status("big")["progress"]["rows"] > 0, 60, what="the dump to start")
    subprocess.run(["rm", "-r", tisfs.path("collections", "big")], check=True, timeout=60)
    assert os.listdir(tisfs.path("collections")) == []
    assert not os.path.exists(os.path.join(tisfs.data, "collections", "big"))


def test_tail_f_follows_the_log(tisfs, big):
    os.mkdir(tisfs.path("collections", "big"))
    tisfs.write(big, "collections", "big", "create")
    tail = subprocess.Popen(["tail", "-s", "0.1", "-n", "+1", "-f",
                             tisfs.path("collections", "big", "logs")],
                            stdout=subprocess.PIPE)
    out = b""
    try:
        deadline = time.monotonic() + 120
        while b"complete" not in out:
            assert time.monotonic() < deadline, out
            ready, _, _ = select.select([tail.stdout], [], [], 1)
            if ready:
                out += os.read(tail.stdout.fileno(), 65536)
    finally:
        tail.kill()
        tail.wait()
    lines = out.decode().splitlines()
    assert "started for collection big" in lines[0]
    assert any("indexBackflow" in line for line in lines)
