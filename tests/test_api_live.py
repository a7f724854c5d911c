"""The C unit test of api.h (tests/unit/test_api.c) once more, with a real
MariaDB: its live part builds a table through the handlers directly (no
mount, no HTTP), queries it, rebuilds it and reads the metrics."""

import os
import subprocess

from conftest import BUILD


def test_api_handlers_against_mariadb(mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest")
    mariadb.execute(
        "DROP TABLE IF EXISTS api_items",
        "CREATE TABLE api_items (id INT PRIMARY KEY, title VARCHAR(100))",
        "INSERT INTO api_items VALUES (1, 'green apple'), (2, 'apple pie'), (3, 'pear')",
        db="tistest")
    env = dict(os.environ, TISFS_TEST_MYSQL_PORT=str(mariadb.port))
    r = subprocess.run([os.path.join(BUILD, "tests", "test_api")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout
