"""The builds' crash drill: kill -9 at random instants of create, rebuild,
delete and the switch, restart, and check what a user relies on: no status
says running, every serving generation is complete and equal to its table
row for row, and no generation directory is orphaned. The suite runs a few
rounds; scripts/crash-drill runs hundreds (TISFS_CRASH_ROUNDS)."""

import os
import random
import signal
import subprocess
import threading

from conftest import mysql_spec

ROWS = 30000


def table_ids(mariadb):
    return [r[0] for r in mariadb.query("SELECT id FROM tistest.cr_items ORDER BY id",
                                        db="tistest")]


def check(tisfs, ids):
    names = os.listdir(tisfs.path("collections"))
    for name in names:
        st = tisfs.status(name)
        assert not (st.get("taskid") and not st["complete"] and not st["failed"]), st
        schema = tisfs.json("collections", name, "schema")
        gens = sorted(d for d in os.listdir(os.path.join(tisfs.data, "collections", name))
                      if d.startswith("gen-")) if os.path.isdir(
            os.path.join(tisfs.data, "collections", name)) else []
        if schema["generation"] is None:
            assert gens == [], (name, gens)
            continue
        assert gens == [f"gen-{schema['generation']}"], (name, gens, schema["generation"])
        assert sorted(d["id"] for d in tisfs.docs(name)) == ids, name
    # Nothing on disk for a collection that does not exist.
    on_disk = set(os.listdir(os.path.join(tisfs.data, "collections")))
    assert on_disk <= set(names), (on_disk, names)


def test_build_crash_drill(tisfs, mariadb):
    rounds = int(os.environ.get("TISFS_CRASH_ROUNDS", "6"))
    rng = random.Random(int(os.environ.get("TISFS_CRASH_SEED", "11")))
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute("DROP TABLE IF EXISTS tistest.cr_items",
                    "CREATE TABLE tistest.cr_items (id INT PRIMARY KEY, body VARCHAR(200))",
                    "INSERT INTO tistest.cr_items SELECT seq, REPEAT('lorem ipsum ', 8)"
                    f" FROM seq_1_to_{ROWS}", db="tistest")
    spec = mysql_spec(mariadb, "cr_items", ['{name:"body"}'])
    ids = table_ids(mariadb)
    serial = 0
    for r in range(rounds):
        names = os.listdir(tisfs.path("collections"))
        action = rng.choice(["create", "rebuild", "delete"] if names else ["create"])
        if action == "create":
            serial += 1
            name = f"c{serial}"
            os.mkdir(tisfs.path("collections", name))
            tisfs.write(spec, "collections", name, "create")
        elif action == "rebuild":
            name = rng.choice(names)
            st = tisfs.status(name)
            if st.get("taskid") and not st["complete"] and not st["failed"]:
                continue
            try:
                tisfs.write("1", "collections", name, "build")
            except OSError:
                pass  # refused (no spec yet): the kill still comes
        else:
            name = rng.choice(names)
            threading.Thread(target=subprocess.run,
                             args=(["rm", "-r", tisfs.path("collections", name)],),
                             kwargs={"capture_output": True}, daemon=True).start()
        threading.Event().wait(rng.uniform(0, 1.2))
        tisfs.stop(signal.SIGKILL)
        tisfs.start()
        for name in os.listdir(tisfs.path("collections")):
            st = tisfs.status(name)
            if st.get("taskid") and not st["complete"] and not st["failed"]:
                tisfs.wait_done(name)
        check(tisfs, ids)
