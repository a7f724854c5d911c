"""Writing specs: the seed's body is accepted verbatim, anything malformed
fails the close() with EINVAL and says what and where in status and logs."""

import errno
import os

import pytest

import conftest
from conftest import mysql_spec

SEED_BODY = conftest.SEED_BODY.replace("{pd}", "127.0.0.1:1")  # a dead port


def refused(tisfs, name, body):
    """Writes body as the spec of a new collection; returns status after the
    refusal, asserting that close() failed with EINVAL."""
    if not os.path.isdir(tisfs.path("collections", name)):
        os.mkdir(tisfs.path("collections", name))
    with pytest.raises(OSError) as e:
        tisfs.write(body, "collections", name, "create")
    assert e.value.errno == errno.EINVAL
    st = tisfs.status(name)
    assert st["failed"] and st["faild"] and not st["complete"]
    assert st["errs"] in tisfs.read("collections", name, "logs")
    return st


def test_seed_body_is_accepted_verbatim(tisfs):
    os.mkdir(tisfs.path("collections", "employess"))
    tisfs.write(SEED_BODY, "collections", "employess", "create")   # no EINVAL
    spec = tisfs.json("collections", "employess", "create")
    assert spec["datasource"] == {"plugin": "TiKV", "pdAddrs": "127.0.0.1:1",
                                  "dbName": "employees", "user": "root", "password": ""}
    assert spec["table"] == "employess"
    assert spec["columns"] == [{"name": "id", "token": "ik", "search": True, "store": True}]
    assert spec["incr"]["plugin"] == "TiCDC-Kafka"
    assert spec["incr"]["offsetResetStrategy"] == "earliest"
    assert spec["incr"]["groupId"] == "test_group"


def test_malformed_json_names_line_and_column(tisfs):
    body = '{\n datasource: { plugin: "MySQL" },\n table = "t"\n}\n'
    st = refused(tisfs, "c", body)
    assert "line 3, column 8" in st["errs"], st["errs"]
    assert "expected ':'" in st["errs"]


def test_malformed_after_chinese_counts_characters(tisfs):
    body = '{ table: "表格" x }'
    st = refused(tisfs, "c", body)
    assert "line 1, column 15" in st["errs"], st["errs"]


@pytest.mark.parametrize("mutate,expect", [
    (lambda s: s.replace('plugin: "MySQL"', 'plugin: "Oracle"'), 'unknown plugin "Oracle"'),
    (lambda s: s.replace(' table: "t",\n', ""), "table: required"),
    (lambda s: s.replace('{name:"b"}', '{name:"A"}'), 'duplicate column "A"'),
    (lambda s: s.replace('token:"ik"', 'token:"klingon"'), 'unknown token "klingon"'),
    (lambda s: s.replace('dbName: "tistest"', 'dbName: "tistest", colour: 1'),
     'unknown field "colour"'),
    (lambda s: s.replace("port:", "port: 70000, x:"), "unknown field"),
    (lambda s: s.replace(" ]", " ],\n indexName: \"other\""), 'indexName: "other" does not match'),
    (lambda s: s.replace("columns: [", "columns: [],\n cols: ["), "unknown field"),
])
def test_spec_errors_name_the_culprit(tisfs, mariadb, mutate, expect):
    base = mysql_spec(mariadb, "t", ['{name:"a", token:"ik"}', '{name:"b"}'])
    st = refused(tisfs, "c", mutate(base))
    assert expect in st["errs"], st["errs"]


def test_empty_columns_refused(tisfs, mariadb):
    st = refused(tisfs, "c", mysql_spec(mariadb, "t", []))
    assert "columns" in st["errs"]


def test_refusal_is_a_task_and_next_spec_works(tisfs, mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest",
                    "CREATE TABLE IF NOT EXISTS tistest.small (id INT PRIMARY KEY, v VARCHAR(10))",
                    "REPLACE INTO tistest.small VALUES (1, 'one'), (2, 'two')")
    st = refused(tisfs, "c", "{ oops")
    first = st["taskid"]
    assert os.path.isdir(tisfs.path("tasks", str(first)))
    tisfs.write(mysql_spec(mariadb, "small", ['{name:"v"}']), "collections", "c", "create")
    st = tisfs.wait_done("c")
    assert st["complete"] and st["taskid"] > first
