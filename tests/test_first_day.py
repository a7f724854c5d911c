"""A new user's first day, with the tools a user types: bash redirections,
mkdir, tail -f, cat. Every refusal must reach the shell (at open or write,
since bash ignores the close of a redirection) and leave its reason in the
mount-wide `logs`; a `tail -f` of a collection's logs keeps following
across rebuilds; a query without q= is an error, not every document."""

import json
import os
import subprocess
import threading

import pytest

from conftest import mysql_spec, wait_for


@pytest.fixture(scope="module")
def items(mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(
        "DROP TABLE IF EXISTS tistest.fd_items",
        "CREATE TABLE tistest.fd_items (id INT PRIMARY KEY, title VARCHAR(100), added DATE)",
        "INSERT INTO tistest.fd_items VALUES (1, 'shared library', '2020-01-05'),"
        " (2, 'library loader', '2021-03-01'), (3, 'garden tools', '2022-07-30')",
        db="tistest")
    return mysql_spec(mariadb, "fd_items",
                      ['{name:"title", token:"ik"}', '{name:"added"}'])


def sh(cmd, cwd):
    """Runs cmd in bash in cwd; returns (exit status, stderr)."""
    r = subprocess.run(["bash", "-c", cmd], cwd=cwd, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stderr


def root_log(tisfs):
    return tisfs.read("logs")


def test_refusals_reach_the_shell_and_the_log(tisfs, items):
    mnt = tisfs.mnt
    assert sh("mkdir collections/c", mnt)[0] == 0
    # Nothing to rebuild, no spec for a channel: refused at open, where
    # bash sees it (they came at close, which bash ignores).
    rc, err = sh("echo 1 > collections/c/build", mnt)
    assert rc == 1 and "Invalid argument" in err, err
    rc, err = sh("echo '{plugin:\"TiCDC-Kafka\", mqAddress:\"127.0.0.1:1\", topic:\"t\"}' "
                 "> collections/c/incr", mnt)
    assert rc == 1 and "Invalid argument" in err, err
    assert "collection c has no spec yet" in root_log(tisfs)
    # A complete but invalid spec fails the write: bash says so and exits 1.
    rc, err = sh("echo '{ table: 5 }' > collections/c/create", mnt)
    assert rc == 1 and "write error: Invalid argument" in err
    assert "refused /collections/c/create: datasource: required" in root_log(tisfs)
    assert "datasource: required" in tisfs.status("c")["errs"]
    # Not an object at all: refused at write too.
    rc, err = sh("echo hello > collections/c/create", mnt)
    assert rc == 1 and "write error" in err
    # A good spec builds; a second create is refused at open (EEXIST).
    with open(os.path.join(mnt, "collections/c/create"), "w") as f:
        f.write(items)
    assert tisfs.wait_done("c")["complete"]
    rc, err = sh("echo '{}' > collections/c/create", mnt)
    assert rc == 1 and "File exists" in err
    assert "is built already; rebuild it with build" in root_log(tisfs)
    # Read-only files refuse writes at open, with the reason logged.
    rc, err = sh("echo 1 > collections/c/status", mnt)
    assert rc == 1 and "Permission denied" in err
    assert "refused /collections/c/status: this file is read-only" in root_log(tisfs)


def test_bad_names_are_explained_and_leave_nothing_behind(tisfs):
    mnt = tisfs.mnt
    for name in ["my items", "商品", "items.v2"]:
        rc, err = sh(f"mkdir 'collections/{name}'", mnt)
        assert rc == 1 and "Invalid argument" in err
        assert f'collection name "{name}": collection names are 1-64 of A-Z a-z 0-9 _ -' \
            in root_log(tisfs)
    rc, _ = sh("mkdir -p collections/deep/x", mnt)
    assert rc == 1
    assert os.listdir(tisfs.path("collections")) == []
    assert "removed the empty collection deep again" in root_log(tisfs)
    # A collection that holds something is never taken back.
    os.mkdir(tisfs.path("collections", "kept"))
    sh("echo '{ table: 5 }' > collections/kept/create", mnt)
    assert sh("mkdir -p collections/kept/x", mnt)[0] == 1
    assert os.listdir(tisfs.path("collections")) == ["kept"]
    # Nor one a command of its own reserved (mkdir NAME, then mkdir NAME/x).
    assert sh("mkdir collections/mine", mnt)[0] == 0
    assert sh("mkdir collections/mine/x", mnt)[0] == 1
    assert sorted(os.listdir(tisfs.path("collections"))) == ["kept", "mine"]


def test_root_log_records_start_and_stop(tisfs):
    assert "[tisfs] started: data " in root_log(tisfs)
    tisfs.restart()
    log = root_log(tisfs)
    assert "[tisfs] stopping" in log and log.count("[tisfs] started") == 2


def test_tail_f_follows_the_collection_log_across_rebuilds(tisfs, items):
    tisfs.create("t", items)
    tail = subprocess.Popen(["tail", "-f", "-n", "+1", tisfs.path("collections", "t", "logs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, errs = [], []
    readers = [threading.Thread(target=lambda: lines.extend(iter(tail.stdout.readline, "")),
                                daemon=True),
               threading.Thread(target=lambda: errs.extend(iter(tail.stderr.readline, "")),
                                daemon=True)]
    for r in readers:
        r.start()
    try:
        first = tisfs.status("t")["taskid"]
        wait_for(lambda: any(f"[task {first} " in l and "started" in l for l in lines), 20,
                 what="tail to show the first task")
        ids = []
        for _ in range(2):
            tisfs.write("1", "collections", "t", "build")
            st = tisfs.wait_done("t")
            assert st["complete"]
            ids.append(st["taskid"])
        for i in ids:
            wait_for(lambda: any(f"[task {i} " in l and "complete" in l for l in lines), 20,
                     what=f"tail to show task {i} to its end")
        assert not any("truncated" in e for e in errs), errs
        # One line per event, each with its task; the tasks in order.
        order = [int(l.split("[task ", 1)[1].split(" ", 1)[0]) for l in lines if "[task " in l]
        assert order == sorted(order) and set(order) == {first, *ids}
        # tasks/ID/logs keeps one task's lines.
        own = tisfs.read("tasks", str(ids[0]), "logs")
        assert "[task " not in own and f"task {ids[0]} (build) started" in own
    finally:
        tail.kill()
        tail.wait()


def test_select_parameter_errors(tisfs, items):
    tisfs.create("s", items)

    def q(qs):
        return tisfs.json("collections", "s", "select", qs)

    # A query without q= is an error naming it, with the fix.
    r = q("title:library")
    assert r["error"]["code"] == 400
    assert "unknown parameter 'title:library': to search, write q=title:library" \
        in r["error"]["msg"]
    assert "unknown parameter 'colour'" in q("q=title:library&colour=red")["error"]["msg"]
    # A repeated q: the first counts, as in Solr.
    assert q("q=title:garden&q=title:library&fl=id")["response"]["numFound"] == 1
    # Impossible dates and numbers in a range are 400s.
    for bad in ["added:[2020-13-01 TO *]", "added:[2021-02-29 TO *]",
                "added:[2020-01-01 TO 2020-01-32]", "id:[abc TO 5]"]:
        r = q("q=" + bad)
        assert r["error"]["code"] == 400, (bad, r)
    assert q("q=added:[2020-02-29 TO 2021-12-31]&fl=id")["response"]["numFound"] == 1
    # Harmless parameters of Solr clients are accepted.
    assert q("q=title:library&indent=true&_=12345")["response"]["numFound"] == 2


def test_a_spec_changes_through_build_while_the_old_one_serves(tisfs, mariadb, items):
    old = mysql_spec(mariadb, "fd_items", ['{name:"title", token:"string"}'])
    tisfs.create("chg", old)
    q = "q=title:library&fl=id,title,added"

    def answer():
        return tisfs.json("collections", "chg", "select", q)["response"]

    before = answer()
    assert before["numFound"] == 0  # "string": only the whole title is a term
    # A bad new spec is refused at write, and changes nothing.
    rc, err = sh("echo '{ table: 5 }' > collections/chg/build", tisfs.mnt)
    assert rc == 1 and "write error: Invalid argument" in err
    assert json.loads(tisfs.read("collections", "chg", "create"))["columns"][0]["token"] \
        == "string"
    # The new spec: word segmentation, and one more column.
    with open(tisfs.path("collections", "chg", "build"), "w") as f:
        f.write(items)
    seen = []

    def finished():
        st = tisfs.status("chg")
        seen.append(answer())
        return st if st["complete"] or st["failed"] else None

    st = wait_for(finished, 120, what="the rebuild with the new spec")
    assert st["complete"], st
    after = answer()
    assert after["numFound"] == 2 and all("added" in d for d in after["docs"])
    # Every answer during the rebuild was the old one or the new one.
    assert all(a == before or a == after for a in seen)
    spec = json.loads(tisfs.read("collections", "chg", "create"))
    assert [c["name"] for c in spec["columns"]] == ["title", "added"]
    assert "added" in [f["name"] for f in tisfs.json("collections", "chg", "schema")["fields"]]
    # A plain rebuild keeps the spec now accepted.
    tisfs.write("1", "collections", "chg", "build")
    assert tisfs.wait_done("chg")["complete"] and answer()["numFound"] == 2


def test_status_says_whether_the_source_or_the_analyzers_bound_the_dump(tisfs, mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(
        "DROP TABLE IF EXISTS tistest.fd_pinyin",
        "CREATE TABLE tistest.fd_pinyin (id INT PRIMARY KEY, name VARCHAR(200))"
        " DEFAULT CHARSET=utf8mb4",
        "INSERT INTO tistest.fd_pinyin SELECT seq, REPEAT('中华人民共和国北京大学', 2)"
        " FROM seq_1_to_30000", db="tistest")
    st = tisfs.create("py", mysql_spec(mariadb, "fd_pinyin", ['{name:"name", token:"pinyin"}']))
    assert st["complete"], st
    dump = st["stages"][0]
    assert dump["name"] == "dump"
    assert abs(dump["source_seconds"] + dump["index_seconds"] - dump["seconds"]) < 0.01
    # Pinyin costs far more than reading 30000 short rows from a local server.
    assert dump["index_seconds"] > dump["source_seconds"], dump
    assert "the analyzers bound this stage, not the database" in \
        tisfs.read("collections", "py", "logs")


def test_progress_is_one_plain_line(tisfs, kafka, items):
    os.mkdir(tisfs.path("collections", "p"))
    assert tisfs.read("collections", "p", "progress") == "no build yet\n"
    tisfs.write(items, "collections", "p", "create")
    tisfs.wait_done("p")
    line = tisfs.read("collections", "p", "progress")
    st = tisfs.status("p")
    assert line == f"task {st['taskid']} complete indexBackflow [{'#' * 20}] 100% 3/3 rows\n"
    assert "\x1b" not in line
    # With a channel: its state, lag and rate follow on the same line.
    kafka.create_topic("fd-progress")
    tisfs.write('{plugin: "TiCDC-Kafka", mqAddress: "%s", topic: "fd-progress"}'
                % kafka.bootstrap, "collections", "p", "incr")
    line = wait_for(lambda: (lambda l: l if "channel running, lag 0" in l else None)(
        tisfs.read("collections", "p", "progress")), 30, what="the channel in progress")
    assert line.count("\n") == 1 and line.endswith("events/s\n")


def test_progress_while_a_build_runs(tisfs, mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(
        "DROP TABLE IF EXISTS tistest.fd_big",
        "CREATE TABLE tistest.fd_big (id INT PRIMARY KEY, body VARCHAR(200))",
        "INSERT INTO tistest.fd_big SELECT seq, REPEAT('lorem ipsum ', 10) FROM seq_1_to_200000",
        db="tistest")
    os.mkdir(tisfs.path("collections", "pb"))
    tisfs.write(mysql_spec(mariadb, "fd_big", ['{name:"body"}']), "collections", "pb", "create")
    import re
    pat = re.compile(r"^task \d+ running: dump \[[#-]{20}\] +\d+% \d+/\d+ rows, \d+ rows/s"
                     r"(, ETA \d+(s|m\d\ds|h\d\dm))?\n$")
    line = wait_for(lambda: (lambda l: l if " rows/s" in l else None)(
        tisfs.read("collections", "pb", "progress")), 60, what="a running build's line")
    assert pat.match(line), line
    assert tisfs.wait_done("pb")["complete"]


def test_small_things(tisfs, mariadb, items, tmp_path):
    from conftest import TISFS, TISFS_DUMP
    # "localhost" with a port means TCP to that port, not the Unix socket.
    st = tisfs.create("lh", items.replace('host: "127.0.0.1"', 'host: "localhost"'))
    assert st["complete"], st
    # Commands that fail create no state.
    r = subprocess.run([TISFS, "--data", str(tmp_path / "s1"), str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "mountpoint" in r.stderr
    r = subprocess.run([TISFS_DUMP, "--data", str(tmp_path / "s2"), "x"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no tisfs state" in r.stderr
    assert os.listdir(tmp_path) == []
    r = subprocess.run([TISFS_DUMP, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: tisfs-dump" in r.stdout
