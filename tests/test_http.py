"""The REST listener (--http) over real HTTP on loopback: config.ajax under
both spellings of every method with the seed's bodies verbatim (only the
addresses moved to loopback), its refusals, the bearer token, the body limit,
Solr's select, ping and core status for a stock client (pysolr) and curl,
Prometheus metrics, and REST and the mount answering alike, since both call
the same handlers. Every daemon of these tests is checked at its end: exit 0,
and the spec's password in none of its replies nor its log."""

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pysolr
import pytest
import requests

import cdcgen
from conftest import (AJAX, PASSWORD, SEED_BODY, SEED_ROWS, TISFS, Http, Tisfs, envelope,
                      free_port, is_mounted, mysql_spec, start_with_http, stop_and_check,
                      wait_for)

# The seed's other request bodies (shared/seed/rest-api.md), verbatim; only
# the Kafka address is moved to loopback ({mq}). The seed's do_create body is
# conftest.SEED_BODY.
SEED_GET_STATUS = """{
 taskid: 123
 log: true # 是否显示日志
}
"""

SEED_GET_INCR_STATUS = """{
 indexName: "employess",
 log: true
}
"""

SEED_CREATE_INCR = """{
 indexName: "employess" ,
 incr: {
   plugin: "TiCDC-Kafka"，
   mqAddress: "{mq}" ,
   topic: "test_topic"  ,
   groupId: "test_group" ,
   offsetResetStrategy: "earliest" #earliest or latest or none,可选
 }
}
"""


def seed_create(pd, mq):
    return SEED_BODY.replace("{pd}", pd).replace('"127.0.0.1:1"', f'"{mq}"')


def seed_create_incr(mq):
    return SEED_CREATE_INCR.replace("{mq}", mq)


STATUS_FIELDS = {"taskid", "indexName", "complete", "faild", "failed", "stage", "stages",
                 "progress", "errs", "started", "finished"}
INCR_FIELDS = {"indexName", "state", "protocol", "current_cursor", "last_60_sec",
               "applied_commit_ts", "errs"}
STAGES = {"dump", "join", "indexBuild", "indexBackflow"}

ALL_METHODS = ["do_create", "create", "do_get_status", "get_task_status", "do_get_incr_status",
               "get_incr_status", "do_create_incr", "create_incr", "do_fullbuild", "fullbuild",
               "do_delete_index", "delete_index", "deleteIndex"]


def check_status(st, log):
    """A task status as the seed names its fields; logs only when asked."""
    assert STATUS_FIELDS <= set(st), st
    assert ("logs" in st) == log, sorted(st)
    if log:
        assert isinstance(st["logs"], str)
    assert isinstance(st["taskid"], int) and isinstance(st["complete"], bool)
    assert st["faild"] is st["failed"] and isinstance(st["faild"], bool)
    assert st["stage"] in STAGES, st["stage"]
    assert isinstance(st["errs"], str)
    return st


def check_incr(st, log):
    """A channel status as the seed names its fields; logs only when asked."""
    assert INCR_FIELDS <= set(st), st
    assert ("logs" in st) == log, sorted(st)
    if log:
        assert isinstance(st["logs"], str)
    assert isinstance(st["current_cursor"], list) and isinstance(st["last_60_sec"], int)
    for c in st["current_cursor"]:
        assert {"mqName", "partition", "cursor"} <= set(c), c
        assert isinstance(c["cursor"], int) and isinstance(c["partition"], int)
    return st


def no_qtime(answer):
    a = copy.deepcopy(answer)
    a.get("responseHeader", {}).pop("QTime", None)
    return a


def finished(st):
    return st if st["complete"] or st["faild"] else None


def cursor_at(http, name, offset, method="get_incr_status", log=False):
    """Waits until the channel's first partition has applied up to offset."""
    return wait_for(lambda: (lambda s: s if s["current_cursor"] and
                             s["current_cursor"][0]["cursor"] == offset else None)(
        http.ok(method, {"indexName": name, "log": log})), 30,
        what=f"{name}'s channel at offset {offset}")


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$')
METRIC_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def metrics(http):
    """/metrics as [(name, {label: value}, number)]; every line must parse."""
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    assert PASSWORD not in r.text
    out = []
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        labels = dict(METRIC_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric(samples, name, **labels):
    """The sum of the samples called name whose labels include labels."""
    return sum(v for n, ls, v in samples
               if n == name and all(ls.get(k) == str(x) for k, x in labels.items()))


def has_metric(samples, name, **labels):
    return any(n == name and all(ls.get(k) == str(x) for k, x in labels.items())
               for n, ls, _ in samples)


# --- tables ------------------------------------------------------------------

@pytest.fixture(scope="module")
def db(mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    return mariadb


WORDS = ["perl tool", "rust crate", "python library"]
# (id, title, section, size): titles by id % 3, sizes unique.
DOCS = [(i, f"{WORDS[i % 3]} {i}", "libs" if i % 2 == 0 else "devel", (i * 37) % 97)
        for i in range(1, 31)]


@pytest.fixture(scope="module")
def small(db):
    db.execute("DROP TABLE IF EXISTS tistest.h_docs",
               "CREATE TABLE tistest.h_docs (id INT PRIMARY KEY, title VARCHAR(100),"
               " section VARCHAR(20), size INT) DEFAULT CHARSET=utf8mb4")
    con = db.connect("tistest")
    with con.cursor() as cur:
        cur.executemany("INSERT INTO h_docs VALUES (%s, %s, %s, %s)", DOCS)
    con.close()
    return db


def docs_spec(db, name, extra=""):
    """A MySQL-plugin spec of tistest.h_docs naming its collection."""
    return mysql_spec(db, "h_docs", ['{name:"title", token:"ik"}',
                                     '{name:"section", token:"string"}', '{name:"size"}'],
                      extra=f',\n indexName: "{name}"' + extra)


BIG = 300_000


@pytest.fixture(scope="module")
def big(db):
    """A table whose build takes a noticeable moment (about a second)."""
    db.execute("DROP TABLE IF EXISTS tistest.h_big",
               "CREATE TABLE tistest.h_big (id INT PRIMARY KEY, name VARCHAR(40),"
               " body VARCHAR(200))",
               "INSERT INTO tistest.h_big SELECT seq, CONCAT('name ', seq),"
               f" REPEAT('lorem ipsum ', 8) FROM seq_1_to_{BIG}", db="tistest")
    return db


def big_spec(db, name):
    return mysql_spec(db, "h_big", ['{name:"name", token:"ik"}', '{name:"body"}'],
                      extra=f',\n indexName: "{name}"')


def canal_insert(db, table, row, types):
    ev = dict(op="insert", db=db, table=table, ts=cdcgen.tso(int(time.time() * 1000)),
              pk=["id"], types=types, row=row)
    return cdcgen.canal_json(ev)


# --- config.ajax: the seed's bodies ------------------------------------------

def test_seed_do_create_body_verbatim(kafka, tisfs_http, employess, pd):
    """The seed's do_create body, sent with curl as a user would, builds
    through PD; the seed's status and channel bodies follow it; a change on
    the topic reaches select and metrics; a second channel is refused."""
    http = tisfs_http.http
    pd.register_tidb(f"127.0.0.1:{employess.port}")
    kafka.create_topic("test_topic", 1)
    body = os.path.join(tisfs_http.root, "create.json")
    with open(body, "w", encoding="utf-8") as f:
        f.write(seed_create(pd.addr, kafka.bootstrap))
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "--data-binary", "@" + body,
                          http.base + AJAX + "do_create"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    assert env["success"] is True and env["errormsg"] == [], env
    assert list(env["bizresult"]) == ["taskid"] and isinstance(env["bizresult"]["taskid"], int)
    taskid = env["bizresult"]["taskid"]

    # The seed's do_get_status body names task 123: there is none.
    assert taskid != 123
    assert "123" in http.refused("do_get_status", SEED_GET_STATUS)
    status_body = SEED_GET_STATUS.replace("taskid: 123", f"taskid: {taskid}")
    st = wait_for(lambda: finished(http.ok("do_get_status", status_body)), 60,
                  what="the seed's build")
    check_status(st, log=True)
    assert st["complete"] and not st["faild"] and st["errs"] == "", st["errs"] + st["logs"]
    assert st["taskid"] == taskid and st["indexName"] == "employess"
    assert f"connected to TiDB 127.0.0.1:{employess.port}" in st["logs"]
    code, r = http.select("employess", "q=*:*&rows=0")
    assert code == 200 and r["response"]["numFound"] == len(SEED_ROWS), r
    # The mount shows what REST created.
    assert os.listdir(tisfs_http.path("collections")) == ["employess"]

    # The seed's do_get_incr_status body, verbatim.
    inc = wait_for(lambda: (lambda s: s if s["state"] == "running" and s["current_cursor"]
                            else None)(http.ok("do_get_incr_status", SEED_GET_INCR_STATUS)),
                   30, what="the seed's channel to run")
    check_incr(inc, log=True)
    assert inc["indexName"] == "employess" and inc["errs"] == ""
    assert [(c["mqName"], c["partition"], c["cursor"]) for c in inc["current_cursor"]] == \
        [("test_topic", 0, 0)]
    # A change on the topic: the cursor moves, last_60_sec counts it,
    # select finds it, the metrics count it.
    kafka.produce("test_topic", canal_insert("employees", "employess",
                                             {"id": 501, "name": "streamed"},
                                             {"id": "int", "name": "varchar(40)"}), partition=0)
    inc = cursor_at(http, "employess", 1, "do_get_incr_status", log=True)
    check_incr(inc, log=True)
    assert inc["last_60_sec"] >= 1 and "[incr]" in inc["logs"]
    code, r = http.select("employess", "q=id:501&fl=id")
    assert code == 200 and r["response"]["docs"] == [{"id": 501}], r
    m = metrics(http)
    assert metric(m, "tisfs_collection_docs", collection="employess") == len(SEED_ROWS) + 1
    assert has_metric(m, "tisfs_channel_lag", collection="employess", topic="test_topic",
                      partition=0)
    wait_for(lambda: metric(metrics(http), "tisfs_channel_lag", collection="employess") == 0,
             10, what="the channel's lag metric to reach 0")
    assert metric(m, "tisfs_channel_events_applied_total", collection="employess") >= 1
    assert has_metric(m, "tisfs_channel_events_skipped_total", collection="employess")

    # The seed's do_create_incr body for a collection that has a channel.
    msg = http.refused("do_create_incr", seed_create_incr(kafka.bootstrap))
    assert "already" in msg and "employess" in msg, msg
    # The channel goes on.
    assert http.ok("get_incr_status", {"indexName": "employess"})["state"] == "running"


def test_seed_do_create_incr_body_verbatim(kafka, tisfs_http, employess):
    """A collection built without a channel gets one from the seed's
    do_create_incr body; changes then flow; a second one is refused."""
    http = tisfs_http.http
    spec = mysql_spec(employess, "employess", ['{name:"name", token:"ik"}'], db="employees",
                      extra=',\n indexName: "employess"')
    st = http.create("employess", spec)
    assert st["complete"], st
    assert http.ok("do_get_incr_status", SEED_GET_INCR_STATUS)["state"] == "stopped"
    kafka.create_topic("test_topic", 1)
    biz = http.ok("do_create_incr", seed_create_incr(kafka.bootstrap))
    assert list(biz) == ["logs"] and isinstance(biz["logs"], str), biz
    kafka.produce("test_topic", canal_insert("employees", "employess",
                                             {"id": 501, "name": "北京 streamed"},
                                             {"id": "int", "name": "varchar(40)"}), partition=0)
    inc = cursor_at(http, "employess", 1, "do_get_incr_status", log=True)
    assert inc["current_cursor"][0]["mqName"] == "test_topic"
    assert inc["state"] == "running" and inc["last_60_sec"] >= 1
    code, r = http.select("employess", "q=name:北京&fl=id,name")
    assert code == 200 and r["response"]["docs"] == [{"id": 501, "name": "北京 streamed"}], r
    # The mount shows the channel REST created, password-free.
    incr = json.loads(tisfs_http.read("collections", "employess", "incr"))
    assert incr["topic"] == "test_topic" and incr["groupId"] == "test_group"
    msg = http.refused("create_incr", seed_create_incr(kafka.bootstrap))
    assert "already" in msg, msg


# --- config.ajax: every method, both spellings -------------------------------

SPELLINGS = [
    pytest.param(dict(create="do_create", status="do_get_status", incr="do_create_incr",
                      incr_status="do_get_incr_status", build="do_fullbuild",
                      delete="do_delete_index"), id="seed"),
    pytest.param(dict(create="create", status="get_task_status", incr="create_incr",
                      incr_status="get_incr_status", build="fullbuild",
                      delete="delete_index"), id="tis"),
    pytest.param(dict(create="create", status="get_task_status", incr="create_incr",
                      incr_status="get_incr_status", build="fullbuild",
                      delete="deleteIndex"), id="tis-deleteIndex"),
]


@pytest.mark.parametrize("m", SPELLINGS)
def test_every_method_under_each_spelling(kafka, tisfs_http, small, m):
    http = tisfs_http.http
    kafka.create_topic("sp", 1)
    biz = http.ok(m["create"], docs_spec(small, "sp"))
    assert list(biz) == ["taskid"]
    first = biz["taskid"]
    st = wait_for(lambda: finished(http.ok(m["status"], {"taskid": first, "log": False})), 60,
                  what="the build")
    check_status(st, log=False)
    assert st["complete"] and not st["faild"] and st["errs"] == "" and st["taskid"] == first
    check_status(http.ok(m["status"], {"taskid": first}), log=False)
    st = check_status(http.ok(m["status"], {"taskid": first, "log": True}), log=True)
    assert "started for collection sp" in st["logs"]
    assert os.listdir(tisfs_http.path("collections")) == ["sp"]

    inc = check_incr(http.ok(m["incr_status"], {"indexName": "sp", "log": False}), log=False)
    assert inc["state"] == "stopped"
    biz = http.ok(m["incr"], {"indexName": "sp", "incr": {
        "plugin": "TiCDC-Kafka", "mqAddress": kafka.bootstrap, "topic": "sp",
        "groupId": "g-sp", "offsetResetStrategy": "earliest"}})
    assert list(biz) == ["logs"] and isinstance(biz["logs"], str)
    inc = wait_for(lambda: (lambda s: s if s["state"] == "running" and s["current_cursor"]
                            else None)(http.ok(m["incr_status"], {"indexName": "sp"})), 30,
                   what="the channel to run")
    check_incr(inc, log=False)
    assert inc["current_cursor"][0]["mqName"] == "sp"
    inc = check_incr(http.ok(m["incr_status"], {"indexName": "sp", "log": True}), log=True)
    assert "[incr]" in inc["logs"]

    biz = http.ok(m["build"], {"indexName": "sp"})
    assert list(biz) == ["taskid"] and biz["taskid"] > first
    st = wait_for(lambda: finished(http.ok(m["status"], {"taskid": biz["taskid"]})), 60,
                  what="the rebuild")
    assert st["complete"] and st["indexName"] == "sp", st
    code, r = http.select("sp", "q=title:python&rows=0")
    assert code == 200 and r["response"]["numFound"] == 10

    assert http.ok(m["delete"], {"indexName": "sp"}) == {}
    assert http.select("sp", "q=*:*")[0] == 404
    assert "sp" in http.refused(m["incr_status"], {"indexName": "sp"})
    assert "sp" in http.refused(m["build"], {"indexName": "sp"})
    assert "sp" in http.refused(m["delete"], {"indexName": "sp"})
    assert str(first) in http.refused(m["status"], {"taskid": first})
    assert os.listdir(tisfs_http.path("collections")) == []
    # The name is free again.
    assert http.create("sp", docs_spec(small, "sp"))["complete"]


# --- config.ajax: refusals ---------------------------------------------------

def test_malformed_bodies_name_line_and_column(tisfs_http):
    http = tisfs_http.http
    for m in ALL_METHODS:
        msg = http.refused(m, '{\n indexName: "x",\n log = true\n}\n')
        assert "line 3, column 6" in msg, (m, msg)
        msg = http.refused(m, '{ indexName: "表格" x }')   # columns count characters
        assert "line 1, column 19" in msg, (m, msg)
        assert http.refused(m, "")
        assert http.refused(m, "[1, 2]")
    # Nothing was created by any of it.
    assert os.listdir(tisfs_http.path("collections")) == []
    assert os.listdir(tisfs_http.path("tasks")) == []


def test_unknown_method_and_missing_fields(tisfs_http, small):
    http = tisfs_http.http
    assert "do_frobnicate" in http.refused("do_frobnicate", {"indexName": "x"})
    env = envelope(http.post(AJAX.rsplit("&", 1)[0], data=b"{}"))   # no emethod at all
    assert not env["success"]
    spec = docs_spec(small, "x").replace(',\n indexName: "x"', "")
    assert "indexName" in http.refused("do_create", spec)
    assert "indexName" in http.refused("fullbuild", {})
    assert "taskid" in http.refused("get_task_status", {"log": True})
    assert os.listdir(tisfs_http.path("collections")) == []


def test_unknown_collection_and_task(kafka, tisfs_http):
    http = tisfs_http.http
    incr = {"plugin": "TiCDC-Kafka", "mqAddress": kafka.bootstrap, "topic": "t"}
    for m, body in [("do_get_incr_status", {"indexName": "nosuch"}),
                    ("get_incr_status", {"indexName": "nosuch", "log": True}),
                    ("do_create_incr", {"indexName": "nosuch", "incr": incr}),
                    ("create_incr", {"indexName": "nosuch", "incr": incr}),
                    ("do_fullbuild", {"indexName": "nosuch"}),
                    ("fullbuild", {"indexName": "nosuch"}),
                    ("do_delete_index", {"indexName": "nosuch"}),
                    ("delete_index", {"indexName": "nosuch"}),
                    ("deleteIndex", {"indexName": "nosuch"})]:
        assert "nosuch" in http.refused(m, body), m
    for m in ("do_get_status", "get_task_status"):
        assert "987654" in http.refused(m, {"taskid": 987654, "log": True})
    assert os.listdir(tisfs_http.path("collections")) == []


def test_busy_collection_refuses_create_and_fullbuild(tisfs_http, big):
    http = tisfs_http.http
    taskid = http.ok("do_create", big_spec(big, "big"))["taskid"]
    msg = http.refused("do_create", big_spec(big, "big"))
    assert str(taskid) in msg and "running" in msg, msg
    for m in ("do_fullbuild", "fullbuild"):
        msg = http.refused(m, {"indexName": "big"})
        assert str(taskid) in msg and "running" in msg, msg
    assert not http.task(taskid)["complete"], "the build ended before the refusals"
    st = http.wait_task(taskid)
    assert st["complete"] and st["errs"] == "", st
    assert "refused a" in http.task(taskid, log=True)["logs"]
    # Built: create is refused (rebuild with fullbuild), fullbuild starts one.
    assert "big" in http.refused("create", big_spec(big, "big"))
    again = http.ok("do_fullbuild", {"indexName": "big"})["taskid"]
    assert again > taskid and http.wait_task(again)["complete"]
    code, r = http.select("big", "q=*:*&rows=0")
    assert code == 200 and r["response"]["numFound"] == BIG


def test_second_channel_refused(kafka, tisfs_http, small):
    http = tisfs_http.http
    incr = {"plugin": "TiCDC-Kafka", "mqAddress": kafka.bootstrap, "topic": "one"}
    st = http.create("two", docs_spec(small, "two", extra=",\n incr: " + json.dumps(incr)))
    assert st["complete"], st
    for m in ("do_create_incr", "create_incr"):
        msg = http.refused(m, {"indexName": "two", "incr": dict(incr, topic="other")})
        assert "already" in msg and "one" in msg, msg
    logs = http.task(st["taskid"], log=True)["logs"]
    assert "second incremental channel" in logs or "already" in logs
    assert json.loads(tisfs_http.read("collections", "two", "incr"))["topic"] == "one"


# --- full build while select answers ----------------------------------------

def test_fullbuild_serves_the_old_generation_until_the_switch(tisfs_http, big):
    http = tisfs_http.http
    assert http.create("gen", big_spec(big, "gen"))["complete"]
    queries = ["q=*:*&rows=0", "q=name:fresh&fl=id&sort=id+asc&rows=20"]

    def answer():
        out = []
        for q in queries:
            code, r = http.select("gen", q)
            assert code == 200, r
            out.append(no_qtime(r))
        return out
    old = answer()
    assert old[0]["response"]["numFound"] == BIG and old[1]["response"]["numFound"] == 0
    big.execute("INSERT INTO h_big VALUES " + ", ".join(
        f"({BIG + i}, 'fresh {i}', 'x')" for i in range(1, 6)),
        "UPDATE h_big SET name = 'fresh one' WHERE id = 1", db="tistest")
    try:
        taskid = http.ok("do_fullbuild", {"indexName": "gen"})["taskid"]
        seen = []
        deadline = time.monotonic() + 120
        while True:
            st = http.task(taskid)
            seen.append((st["complete"] or st["faild"], answer()))
            if seen[-1][0]:
                break
            assert time.monotonic() < deadline, "the rebuild did not finish"
        assert st["complete"], st
    finally:
        big.execute(f"DELETE FROM h_big WHERE id > {BIG}",
                    "UPDATE h_big SET name = 'name 1' WHERE id = 1", db="tistest")
    new = seen[-1][1]
    assert new[0]["response"]["numFound"] == BIG + 5
    assert [d["id"] for d in new[1]["response"]["docs"]] == [1] + [BIG + i for i in range(1, 6)]
    # Each query (the switch may fall between two of them) answers as the
    # old generation did, then as the new one does, never anything else.
    for i, q in enumerate(queries):
        kinds = []
        for done, a in seen:
            assert a[i] in (old[i], new[i]), (q, a[i])
            kinds.append("old" if a[i] == old[i] else "new")
        assert kinds == sorted(kinds, key=lambda k: k == "new"), (q, "old after new", kinds)
        assert sum(1 for (done, _), k in zip(seen, kinds) if not done and k == "old") >= 2, \
            f"{q}: the old generation was not seen while the rebuild ran: {kinds}"


# --- token -------------------------------------------------------------------

TOKEN = "s3cret-Token-42"


def test_token_guards_every_endpoint(small):
    root = tempfile.mkdtemp(prefix="tisfs-http-token-")
    tok = os.path.join(root, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\nthe second line is not part of it\n")
    os.chmod(tok, 0o600)
    fs = start_with_http(root, ["--token-file", tok], token=TOKEN)
    try:
        http = fs.http
        assert http.create("docs", docs_spec(small, "docs"))["complete"]
        anon, wrong = Http(http.addr), Http(http.addr, "wrong")
        near = [Http(http.addr, TOKEN[:-1]), Http(http.addr, TOKEN + "x"),
                Http(http.addr, TOKEN + "\tthe second line is not part of it")]
        endpoints = [("GET", "/solr/docs/select?q=*:*", None),
                     ("POST", "/solr/docs/select", {"q": "*:*"}),
                     ("GET", "/solr/docs/admin/ping", None),
                     ("GET", "/solr/admin/cores?action=STATUS", None),
                     ("GET", "/metrics", None),
                     ("POST", AJAX + "get_task_status", b"{taskid: 1}"),
                     ("POST", AJAX + "do_fullbuild", b'{indexName: "docs"}')]
        for method, path, body in endpoints:
            for client in [anon, wrong] + near:
                r = client.request(method, path, data=body)
                assert r.status_code == 401, (method, path, r.status_code, r.text)
                # JSON saying why: {"error": "..."}, under /solr/ Solr's
                # error layout (what pysolr needs, below), at config.ajax
                # the seed's envelope (what its clients read).
                if path.startswith(AJAX):
                    assert r.json()["success"] is False and r.json()["errormsg"], r.text
                else:
                    assert r.json()["error"], r.text
                if not path.startswith("/solr/"):
                    assert isinstance(r.json()["error"], str), r.text
                assert TOKEN not in r.text
            basic = anon.request(method, path, data=body,
                                 headers={"Authorization": "Basic czNjcmV0LVRva2VuLTQyOg=="})
            assert basic.status_code == 401, (method, path)
        # Nothing refused ran: no rebuild was started.
        tasks = os.listdir(fs.path("tasks"))
        assert len(tasks) == 1
        for method, path, body in endpoints[:-1]:
            r = http.request(method, path, data=body)
            assert r.status_code == 200, (method, path, r.status_code, r.text)
        # A stock Solr client with the token, and without.
        solr = solr_client(http, "docs")
        solr.get_session().headers["Authorization"] = "Bearer " + TOKEN
        assert solr.search("title:python").hits == 10
        for client in (anon, wrong):
            with pytest.raises(pysolr.SolrError) as e:
                solr_client(client, "docs").search("title:python")
            assert "401" in str(e.value)
            with pytest.raises(pysolr.SolrError) as e:
                ping(solr_client(client, "docs"))
            assert "401" in str(e.value)
    finally:
        try:
            stop_and_check(fs)
            with open(os.path.join(root, "daemon.err"), "rb") as f:
                assert TOKEN.encode() not in f.read(), "the token in the daemon's log"
        finally:
            shutil.rmtree(root, ignore_errors=True)


def test_without_token_file_any_authorization_is_ignored(tisfs_http):
    r = tisfs_http.http.get("/metrics", headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 200
    assert Http(tisfs_http.http.addr).get("/metrics").status_code == 200


# --- body limit --------------------------------------------------------------

def read_status_line(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_16_mib_body_is_413_and_the_server_goes_on(tisfs_http):
    http = tisfs_http.http
    host, port = http.addr.rsplit(":", 1)
    # A client announces 16 MiB, sends 64 KiB of it and stalls.
    s = socket.create_connection((host, int(port)), timeout=10)
    try:
        s.sendall((f"POST {AJAX}do_create HTTP/1.1\r\nHost: {http.addr}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {16 << 20}\r\n\r\n"
                   ).encode() + b"{" + b" " * 65535)
        # Meanwhile everything else is answered.
        assert http.get("/metrics").status_code == 200
        assert http.refused("get_task_status", {"taskid": 1})
        assert http.get("/solr/admin/cores?action=STATUS").status_code == 200
        # The stalled client has its 413 without sending the rest.
        line = read_status_line(s, 10)
        assert re.match(rb"HTTP/1\.[01] 413 ", line), line[:200]
    finally:
        s.close()
    # curl with the whole body: 413.
    path = os.path.join(tisfs_http.root, "big.json")
    with open(path, "wb") as f:
        f.write(b"{" + b" " * ((16 << 20) - 2) + b"}")
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w",
                          "%{http_code}", "-H", "Content-Type: application/json",
                          "--data-binary", "@" + path, http.base + AJAX + "do_create"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout == "413", (out.stdout, out.stderr)
    # A chunked upload announces no length: refused once it passes the limit.
    def chunks():
        for _ in range(16):
            yield b" " * (1 << 20)
    r = http.post(AJAX + "do_create", data=chunks(), timeout=60)
    assert r.status_code == 413, (r.status_code, r.text)
    assert http.get("/metrics").status_code == 200
    # Just under the limit is read and answered as usual.
    body = "{ taskid: 1, log: false }\n#" + "x" * 1_000_000 + "\n"
    assert len(body.encode()) < 1 << 20
    assert "1" in http.refused("get_task_status", body)
    assert http.get("/metrics").status_code == 200
    assert os.listdir(tisfs_http.path("collections")) == []


# --- Solr compatibility ------------------------------------------------------

def solr_client(http, name):
    """pysolr as its users create it, on a session that ignores proxies."""
    solr = pysolr.Solr(f"{http.base}/solr/{name}", always_commit=False, timeout=30)
    session = requests.Session()
    session.trust_env = False
    session.headers.update({k: v for k, v in http.session.headers.items()
                            if k == "Authorization"})
    solr.session = session
    return solr


def ping(solr):
    """pysolr's ping (newer pysolr has solr.ping(); Debian's 3.8.1 has not):
    GET admin/ping/?wt=json."""
    if hasattr(solr, "ping"):
        return json.loads(solr.ping())
    return json.loads(solr._send_request("get", "admin/ping/?wt=json"))


@pytest.fixture(scope="module")
def served(small):
    """One daemon with REST: docs (built from h_docs) and broken (its build
    failed: no index)."""
    root = tempfile.mkdtemp(prefix="tisfs-http-solr-")
    fs = start_with_http(root)
    try:
        assert fs.http.create("docs", docs_spec(small, "docs"))["complete"]
        st = fs.http.create("broken", mysql_spec(small, "h_nosuch", ['{name:"v"}'],
                                                 extra=',\n indexName: "broken"'))
        assert st["faild"], st
        yield fs
    finally:
        try:
            stop_and_check(fs)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def by_size(rows):
    return [d[0] for d in sorted(rows, key=lambda d: -d[3])]


def test_pysolr_search(served):
    solr = solr_client(served.http, "docs")
    python = [d for d in DOCS if "python" in d[1]]
    res = solr.search("title:python", rows=4, start=0, fl="id,size", sort="size desc")
    assert res.hits == 10 and len(res) == 4
    assert [d["id"] for d in res] == by_size(python)[:4]
    assert all(set(d) == {"id", "size"} for d in res)
    res = solr.search("title:python", rows=4, start=4, fl="id,size", sort="size desc")
    assert [d["id"] for d in res] == by_size(python)[4:8]
    res = solr.search("title:python", fq="section:libs", rows=100, fl="id")
    assert res.hits == 5 and {d["id"] for d in res} == {d[0] for d in python if d[2] == "libs"}
    res = solr.search("*:*", fq=["section:devel", "size:[10 TO 50]"], rows=100, fl="id")
    assert {d["id"] for d in res} == {d[0] for d in DOCS if d[2] == "devel" and
                                      10 <= d[3] <= 50}
    res = solr.search("title:python", fl="id,title,score", rows=1)
    doc = res.docs[0]
    assert set(doc) == {"id", "title", "score"} and "python" in doc["title"]
    assert res.raw_response["response"]["maxScore"] == doc["score"]
    assert res.raw_response["responseHeader"]["status"] == 0
    assert solr.search("title:nothinglikethis").hits == 0
    # A query too long for a URL: pysolr POSTs it form-encoded to select/.
    q = "title:python OR " + " OR ".join(f"title:nosuchword{i}" for i in range(80))
    assert len(q) > 1024
    res = solr.search(q, rows=100, fl="id")
    assert res.hits == 10 and {d["id"] for d in res} == {d[0] for d in python}


def test_pysolr_sort_by_the_primary_key(served):
    """The primary key (an INT column) sorts by value, as any typed column."""
    solr = solr_client(served.http, "docs")
    res = solr.search("*:*", sort="id asc", rows=12, fl="id")
    assert [d["id"] for d in res] == list(range(1, 13))
    res = solr.search("*:*", sort="id desc", rows=3, fl="id")
    assert [d["id"] for d in res] == [30, 29, 28]
    assert solr.search("id:[5 TO 12]", rows=0).hits == 8


def test_select_with_and_without_slash_get_and_post(served):
    http = served.http
    answers = [http.get("/solr/docs/select?q=title:rust&fl=id&sort=size+asc"),
               http.get("/solr/docs/select/?q=title:rust&fl=id&sort=size+asc"),
               http.post("/solr/docs/select", data={"q": "title:rust", "fl": "id",
                                                    "sort": "size asc"}),
               http.post("/solr/docs/select/", data={"q": "title:rust", "fl": "id",
                                                     "sort": "size asc", "wt": "json"})]
    want = [{"id": i} for i in reversed(by_size([d for d in DOCS if "rust" in d[1]]))]
    for r in answers:
        assert r.status_code == 200, r.text
        assert "json" in r.headers.get("Content-Type", "")
        assert r.json()["response"]["docs"] == want


def test_pysolr_errors(served):
    http = served.http
    with pytest.raises(pysolr.SolrError) as e:
        solr_client(http, "docs").search("title:(foo")
    assert "Cannot parse" in str(e.value) and "400" in str(e.value)
    r = http.get("/solr/docs/select", params={"q": "title:(foo"})
    assert r.status_code == 400
    err = r.json()
    assert err["responseHeader"]["status"] == 400 and err["error"]["code"] == 400
    assert "Cannot parse 'title:(foo'" in err["error"]["msg"]
    # Unknown collection: 404; no index yet: 503 in Solr's error layout.
    with pytest.raises(pysolr.SolrError) as e:
        solr_client(http, "nosuch").search("*:*")
    assert "404" in str(e.value)
    with pytest.raises(pysolr.SolrError) as e:
        solr_client(http, "broken").search("*:*")
    assert "503" in str(e.value)
    r = http.get("/solr/broken/select", params={"q": "*:*"})
    assert r.status_code == 503 and r.json()["error"]["code"] == 503
    assert isinstance(r.json()["error"]["msg"], str)
    # Only JSON is spoken.
    r = http.get("/solr/docs/select", params={"q": "*:*", "wt": "xml"})
    assert r.status_code == 400 and "wt" in r.text
    # Bytes that are not UTF-8 once decoded: 400, in JSON that parses (they
    # were echoed into the header's params, and the answer was no JSON).
    for qs in ("q=%FF%FE", "q=title:%E4%B8", "fl=%C0%80&q=*:*"):
        r = http.get("/solr/docs/select?" + qs)
        assert r.status_code == 400 and "not valid UTF-8" in r.json()["error"]["msg"], qs
    # Repeated parameters as Solr reads them: every fl, the first rows.
    r = http.get("/solr/docs/select?q=title:rust&fl=id&fl=title&rows=1&rows=5&sort=id+asc")
    assert r.status_code == 200, r.text
    docs = r.json()["response"]["docs"]
    assert len(docs) == 1 and set(docs[0]) == {"id", "title"}, docs
    # Everything else is 404, updates included.
    for path in ("/solr/docs/update", "/solr/docs", "/nope", "/solr/config/config.ajax2"):
        assert http.get(path).status_code == 404, path
    with pytest.raises(pysolr.SolrError) as e:
        solr_client(http, "docs").add([{"id": 99}])
    assert "404" in str(e.value)


def test_ping(served):
    http = served.http
    assert ping(solr_client(http, "docs"))["status"] == "OK"
    for path in ("/solr/docs/admin/ping", "/solr/docs/admin/ping/",
                 "/solr/docs/admin/ping?wt=json"):
        r = http.get(path)
        assert r.status_code == 200 and r.json()["status"] == "OK", (path, r.text)
        assert r.json()["responseHeader"]["status"] == 0
    with pytest.raises(pysolr.SolrError) as e:
        ping(solr_client(http, "nosuch"))
    assert "404" in str(e.value)
    assert http.get("/solr/broken/admin/ping").status_code == 503


def test_cores_status(served):
    http = served.http
    r = http.get("/solr/admin/cores", params={"action": "STATUS"})
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["responseHeader"]["status"] == 0 and st["initFailures"] == {}
    assert st["status"]["docs"]["name"] == "docs"
    assert st["status"]["docs"]["index"]["numDocs"] == len(DOCS)
    assert st["status"]["docs"]["index"]["maxDoc"] == len(DOCS)
    assert set(st["status"]) >= {"docs"}
    one = http.get("/solr/admin/cores", params={"action": "STATUS", "core": "docs"}).json()
    assert list(one["status"]) == ["docs"]
    assert one["status"]["docs"] == st["status"]["docs"]


def test_concurrent_queries(served):
    """Eight clients at once: every answer right."""
    http = served.http
    want = sorted(d[0] for d in DOCS if "perl" in d[1])
    errors = []

    def client():
        solr = solr_client(http, "docs")
        try:
            for _ in range(40):
                res = solr.search("title:perl", fl="id", rows=100)
                got = sorted(d["id"] for d in res)
                if got != want:
                    errors.append(got)
        except Exception as e:     # noqa: BLE001 - every failure is the finding
            errors.append(repr(e))
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_clients_are_served_fairly(served):
    """32 keep-alive clients for two seconds: one queue of workers answers
    them in turn; none gets less than a quarter of the busiest one's answers."""
    import time
    http = served.http
    counts = [0] * 32
    stop = time.monotonic() + 2.0

    def client(i):
        session = Http(http.addr)
        while time.monotonic() < stop:
            r = session.get("/solr/docs/select?q=title:perl&fl=id&rows=5")
            assert r.status_code == 200
            counts[i] += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert min(counts) > 0 and min(counts) * 4 >= max(counts), counts


def test_metrics(served):
    http = served.http
    before = metrics(http)
    assert metric(before, "tisfs_collection_docs", collection="docs") == len(DOCS)
    assert any(n.startswith("tisfs_task_") for n, _, _ in before), "no tisfs_task_* metric"
    assert has_metric(before, "tisfs_query_seconds_bucket", le="+Inf")
    solr = solr_client(http, "docs")
    for q in ("title:perl", "title:rust", "section:libs"):
        solr.search(q)
    after = metrics(http)
    assert metric(after, "tisfs_queries_total") >= metric(before, "tisfs_queries_total") + 3
    assert metric(after, "tisfs_query_seconds_count") >= \
        metric(before, "tisfs_query_seconds_count") + 3
    assert metric(after, "tisfs_query_seconds_sum") >= metric(before, "tisfs_query_seconds_sum")
    text = http.get("/metrics").text
    assert "# TYPE tisfs_query_seconds histogram" in text
    assert "# TYPE tisfs_queries_total counter" in text


# --- the mount and REST answer alike ----------------------------------------

PAIR_QUERIES = ["q=title:python", "q=title:python&fl=id,title,score&rows=3&sort=size+desc",
                "q=*:*&fq=section:libs&rows=0", "q=streamed&fl=id,title",
                "q=size:[10+TO+50]&fl=id&sort=id+asc&rows=100", "q=title:(foo",
                "q=title:python&wt=json&start=2&rows=2", "q=title:perl&q.op=AND&df=title"]


def test_mount_and_rest_answer_alike(kafka, tisfs_http, small):
    fs, http = tisfs_http, tisfs_http.http
    kafka.create_topic("pair", 1)
    incr = {"plugin": "TiCDC-Kafka", "mqAddress": kafka.bootstrap, "topic": "pair"}
    st = http.create("pair", docs_spec(small, "pair", extra=",\n incr: " + json.dumps(incr)))
    assert st["complete"]
    kafka.produce("pair", canal_insert("tistest", "h_docs",
                                       {"id": 99, "title": "streamed row", "section": "x",
                                        "size": 5},
                                       {"id": "int", "title": "varchar(100)",
                                        "section": "varchar(20)", "size": "int"}), partition=0)
    cursor_at(http, "pair", 1)
    # status and logs
    assert fs.status("pair") == http.task(st["taskid"])
    wait_for(lambda: fs.read("tasks", str(st["taskid"]), "logs") ==
             http.task(st["taskid"], log=True)["logs"], 10, what="equal logs")
    # incr_status (its counters may move: equal once they stand still)
    wait_for(lambda: fs.json("collections", "pair", "incr_status") ==
             http.ok("get_incr_status", {"indexName": "pair"}), 10, what="equal incr_status")
    # select: the same answer, but for QTime
    for q in PAIR_QUERIES:
        mount = json.loads(fs.read("collections", "pair", "select", q))
        code, rest = http.select("pair", q)
        assert code == (400 if "(foo" in q else 200), (q, rest)
        assert no_qtime(mount) == no_qtime(rest), q
    assert json.loads(fs.read("collections", "pair", "select", "q=streamed"))[
        "response"]["numFound"] == 1
    # A collection without an index: the same 503 answer.
    st = http.create("noidx", mysql_spec(small, "h_nosuch", ['{name:"v"}'],
                                         extra=',\n indexName: "noidx"'))
    assert st["faild"]
    assert fs.status("noidx") == http.task(st["taskid"])
    code, rest = http.select("noidx", "q=*:*")
    assert code == 503
    assert no_qtime(json.loads(fs.read("collections", "noidx", "select", "q=*:*"))) == \
        no_qtime(rest)
    # The core status counts what the schema counts.
    cores = http.get("/solr/admin/cores?action=STATUS&core=pair").json()
    assert cores["status"]["pair"]["index"]["numDocs"] == \
        fs.json("collections", "pair", "schema")["docs"] == len(DOCS) + 1


# --- passwords ---------------------------------------------------------------

def test_no_reply_or_log_shows_a_password(tisfs_http, small):
    """A wrong password fails the build; neither it nor the right one shows
    up in any reply, log, status or metric (stop_and_check reads every reply
    and the daemon's log for the right one at the end)."""
    http = tisfs_http.http
    secret = "Wr0ng-Geheim-9"
    st = http.create("pw", docs_spec(small, "pw").replace(f'"{PASSWORD}"', f'"{secret}"'))
    assert st["faild"] and "Access denied" in st["errs"], st
    st = http.task(st["taskid"], log=True)
    assert secret not in json.dumps(st)
    assert http.create("ok", docs_spec(small, "ok"))["complete"]
    texts = [json.dumps(http.task(st["taskid"], log=True)),
             json.dumps(http.ok("get_incr_status", {"indexName": "ok", "log": True})),
             http.get("/metrics").text, http.get("/solr/admin/cores?action=STATUS").text,
             http.get("/solr/ok/select?q=*:*&fl=*").text,
             http.get("/solr/pw/select?q=*:*").text]
    for t in texts + http.replies:
        assert secret not in t and PASSWORD not in t, t[:300]
    assert "******" in tisfs_http.read("collections", "ok", "create")
    with open(os.path.join(tisfs_http.root, "daemon.err"), "rb") as f:
        assert secret.encode() not in f.read()


# --- command line ------------------------------------------------------------

def test_help_lists_the_http_options():
    out = subprocess.run([TISFS, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for opt in ("--http", "--token-file", "--no-mount"):
        assert opt in out.stdout + out.stderr, opt


def test_no_mount_serves_rest_alone(small):
    root = tempfile.mkdtemp(prefix="tisfs-http-nomount-")
    port = free_port()
    fs = Tisfs(root, ["--http", str(port)], mount=False)   # bare PORT: 127.0.0.1
    fs.http = Http(f"127.0.0.1:{port}")
    try:
        assert not is_mounted(fs.mnt) and os.listdir(fs.mnt) == []
        st = fs.http.create("nm", docs_spec(small, "nm"))
        assert st["complete"], st
        assert fs.http.select("nm", "q=title:python&rows=0")[1]["response"]["numFound"] == 10
        fs.restart()
        assert fs.http.select("nm", "q=title:python&rows=0")[1]["response"]["numFound"] == 10
        assert fs.http.task(st["taskid"])["complete"]
        assert not is_mounted(fs.mnt) and os.listdir(fs.mnt) == []
    finally:
        try:
            stop_and_check(fs)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def pids_with(text):
    """Processes whose command line holds text (a unique temporary path)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        out.append(int(pid))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("foreground", [True, False], ids=["foreground", "daemon"])
def test_port_in_use_is_an_error_on_the_terminal(tisfs_http, foreground):
    root = tempfile.mkdtemp(prefix="tisfs-http-inuse-")
    mnt = os.path.join(root, "mnt")
    os.makedirs(mnt)
    cmd = [TISFS] + (["-f"] if foreground else []) + [
        "--data", os.path.join(root, "state"), "--http", tisfs_http.http.addr, mnt]
    errfile = os.path.join(root, "err")
    try:
        # Output to a file, not a pipe: a daemon that detached would hold a pipe.
        with open(errfile, "wb") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=f, stdin=subprocess.DEVNULL)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        with open(errfile, encoding="utf-8", errors="replace") as f:
            err = f.read()
        assert p.returncode == 1, (p.returncode, err)
        assert "in use" in err and tisfs_http.http.addr in err, err
        assert not is_mounted(mnt)
        # The first daemon is unaffected.
        assert tisfs_http.http.get("/metrics").status_code == 200
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt], check=False)
        for pid in pids_with(root):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
