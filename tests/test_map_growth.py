"""LMDB maps grow when full. The daemon runs with TISFS_LMDB_MAP_MIN (a
test-only minimum map size) set tiny, so that a build and then a stream of
changes need many times the map a generation (and the catalog) opens with:
the build succeeds, the channel applies every event, queries answer while
the map grows under them, and the collection's log says how far it grew."""

import random
import threading

import pytest

from conftest import running_tisfs
from test_incr import Stream, build, db, caught_up, docs, incr_status, logs, select


@pytest.fixture
def small_maps(monkeypatch):
    """A daemon whose maps open at 64 KiB (at least twice the file)."""
    monkeypatch.setenv("TISFS_LMDB_MAP_MIN", "64k")
    with running_tisfs() as fs:
        yield fs


def words(rng, n):
    return " ".join(f"w{rng.randrange(20000)}" for _ in range(n))


def test_maps_grow_under_a_stream_while_queries_answer(kafka, small_maps, db):
    tisfs, rng = small_maps, random.Random(7)
    s = Stream(db, kafka, "inc_grow", "t-grow")
    s.seed([(i, f"seed {i}", words(rng, 50), i) for i in range(1, 201)])
    build(tisfs, db, kafka, s, "grow")
    assert select(tisfs, "grow", "q=*:*&rows=0")["response"]["numFound"] == 200

    # Queries all along: each answers, and the count never goes back.
    seen, failures, stop = [200], [], threading.Event()

    def query():
        while not stop.is_set():
            try:
                n = select(tisfs, "grow", "q=*:*&rows=0")["response"]["numFound"]
                if n < seen[-1]:
                    failures.append(f"numFound went from {seen[-1]} to {n}")
                seen.append(n)
                select(tisfs, "grow", "q=body:w17&rows=5&fl=id,title")
            except Exception as e:  # noqa: BLE001 - any failure is the test's
                failures.append(repr(e))
    t = threading.Thread(target=query)
    t.start()
    try:
        # ~3 MB of documents and their postings into a map that opened at
        # twice a file of a few hundred KiB.
        for i in range(201, 1701):
            s.insert(i, f"row {i}", words(rng, 250), i, flush=False)
        s.flush()
        st = caught_up(tisfs, "grow", kafka, s.topic)
    finally:
        stop.set()
        t.join()
    assert failures == [], failures[:5]
    assert len(seen) > 3
    assert st["state"] == "running" and st["errs"] == "", st
    assert docs(tisfs, "grow") == s.expected()
    assert select(tisfs, "grow", "q=*:*&rows=0")["response"]["numFound"] == 1700
    log = logs(tisfs, "grow")
    # When a batch finds it full, or ahead of need between batches.
    grew = [line for line in log.splitlines() if "map was full: it grew to" in line or
            "more than half used: it grew to" in line]
    assert len(grew) >= 2, log[-3000:]
    # Restarted, the generation opens at twice its file and serves as before.
    tisfs.restart()
    assert select(tisfs, "grow", "q=*:*&rows=0")["response"]["numFound"] == 1700
    s.insert(1701, "after restart", words(rng, 10), 1701)
    caught_up(tisfs, "grow", kafka, s.topic)
    assert select(tisfs, "grow", "q=title:restart")["response"]["numFound"] == 1
    assert incr_status(tisfs, "grow")["errs"] == ""


def test_catalog_grows(small_maps, db):
    """The catalog opens at 64 KiB too: specs, tasks and their logs of a few
    builds outgrow it, and every write still lands."""
    from conftest import mysql_spec
    tisfs = small_maps
    db.execute("DROP TABLE IF EXISTS cat_grow",
               "CREATE TABLE cat_grow (id INT PRIMARY KEY, title VARCHAR(200))",
               "INSERT INTO cat_grow VALUES (1, 'one'), (2, 'two')", db="tistest")
    for n in range(12):
        st = tisfs.create(f"c{n}", mysql_spec(db, "cat_grow", ['{name:"title"}']))
        assert st["complete"], st
    for n in range(12):
        tisfs.write("1", "collections", f"c{n}", "build")
    for n in range(12):
        assert tisfs.wait_done(f"c{n}")["complete"]
    tisfs.restart()
    for n in range(12):
        assert select(tisfs, f"c{n}", "q=title:two")["response"]["numFound"] == 1
    assert b"the catalog's map was full: it grew to" in open(
        tisfs.root + "/daemon.err", "rb").read()


def test_batch_logs_once_when_applied_again(kafka, small_maps, db):
    """A batch that finds the map full is undone and applied again: what it
    logs (a skipped message, a TRUNCATE) is logged once, after the batch
    that did it has committed, never for the attempt that was undone."""
    tisfs, rng = small_maps, random.Random(11)
    s = Stream(db, kafka, "inc_growlog", "t-growlog")
    s.seed([(1, "seed", "x", 1)])
    build(tisfs, db, kafka, s, "growlog")
    poisoned = []
    for i in range(2, 1202):
        s.insert(i, f"row {i}", words(rng, 250), i, flush=False)
        if i % 10 == 0:
            poisoned.append(len(s.sent))
            s.send(b"{not json", flush=False)
    s.flush()
    caught_up(tisfs, "growlog", kafka, s.topic)
    log = logs(tisfs, "growlog")
    assert "map was full: it grew to" in log, log[-2000:]
    skipped = [line for line in log.splitlines() if "skipped message" in line]
    assert sorted(int(line.split("@")[1].split(":")[0]) for line in skipped) == poisoned
    assert incr_status(tisfs, "growlog")["skipped"] == len(poisoned)
