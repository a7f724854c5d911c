"""Faults a machine or a server inflicts at one chosen instant: a catalog
write that fails (a full disk, a full LMDB map) exactly at the switch or at
a task's start, an impostor MySQL server, readers racing a switch.

A full disk cannot be timed from outside to hit one chosen write, so the
catalog faults use the daemon's test hook TISFS_FAULT=TABLE:N:ERROR (the
N-th write into that catalog table since start fails once with ERROR; see
src/catalog.c). test_hardening.py fills a real tmpfs for the build side."""

import errno
import os
import subprocess

import pytest

from conftest import mysql_spec


def rows_table(mariadb, table, n):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(f"DROP TABLE IF EXISTS tistest.{table}",
                    f"CREATE TABLE tistest.{table} (id INT PRIMARY KEY, t VARCHAR(40))",
                    f"INSERT INTO tistest.{table} SELECT seq, CONCAT('row ', seq)"
                    f" FROM seq_1_to_{n}", db="tistest")


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
    with pytest.raises(OSError) as e:
        tisfs.write("1", "collections", "tid", "build")
    assert e.value.errno == errno.EIO
    assert "the catalog cannot be written (is the disk full?)" in tisfs.read("logs")
    # In a child with a deadline: a hung write would hang this process too.
    build = os.path.join(tisfs.mnt, "collections", "tid", "build")
    subprocess.run(["sh", "-c", f"echo 1 > {build}"], check=True, timeout=30)
    st = tisfs.wait_done("tid", 60)
    assert st["complete"], st
    assert found(tisfs, "tid") == 2
