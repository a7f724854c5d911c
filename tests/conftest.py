"""Fixtures for the integration tests: a real MariaDB server and a real tisfs
mount, both started in temporary directories and always torn down.

The binaries come from $TISFS_BUILD (default: ./build). Nothing here sleeps
to synchronise: every wait polls a condition with a deadline."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pymysql
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("TISFS_BUILD", os.path.join(ROOT, "build")))
TISFS = os.path.join(BUILD, "tisfs")
TISFS_DUMP = os.path.join(BUILD, "tisfs-dump")
SANDBOX = os.path.join(ROOT, "scripts", "mariadb-sandbox")


def wait_for(cond, timeout=30.0, interval=0.02, what="condition"):
    """Polls cond() until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class MariaDB:
    def __init__(self, root):
        self.root = root
        self.port = int(subprocess.check_output([SANDBOX, "start", root], text=True).strip())

    def connect(self, db=None):
        return pymysql.connect(host="127.0.0.1", port=self.port, user="tis", password="tispw",
                               database=db, charset="utf8mb4", autocommit=True)

    def execute(self, *sql, db=None):
        con = self.connect(db)
        try:
            with con.cursor() as cur:
                for s in sql:
                    cur.execute(s)
        finally:
            con.close()

    def query(self, sql, db=None):
        con = self.connect(db)
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            con.close()

    def stop(self):
        subprocess.run([SANDBOX, "stop", self.root], check=False)


@pytest.fixture(scope="session")
def mariadb():
    root = tempfile.mkdtemp(prefix="tisfs-mariadb-")
    db = MariaDB(root)
    try:
        yield db
    finally:
        db.stop()
        shutil.rmtree(root, ignore_errors=True)


def is_mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Tisfs:
    """A tisfs daemon in the foreground on a fresh mountpoint."""

    def __init__(self, root):
        self.root = root
        self.data = os.path.join(root, "state")
        self.mnt = os.path.join(root, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.proc = None
        self.start()

    def start(self):
        self.stderr = open(os.path.join(self.root, "daemon.err"), "ab")
        self.proc = subprocess.Popen([TISFS, "-f", "--data", self.data, self.mnt],
                                     stdout=self.stderr, stderr=self.stderr)
        wait_for(lambda: is_mounted(self.mnt) or self.proc.poll() is not None, 20,
                 what="the mount")
        assert self.proc.poll() is None, "tisfs exited: " + self.log_tail()
        wait_for(lambda: os.path.isdir(self.path("collections")), 10, what="collections/")

    def log_tail(self):
        with open(os.path.join(self.root, "daemon.err"), "rb") as f:
            return f.read()[-4000:].decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        """Stops the daemon with sig and waits for it and its mount to go."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)
        self.stderr.close()
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        self.start()

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def read(self, *parts):
        with open(self.path(*parts), encoding="utf-8") as f:
            return f.read()

    def json(self, *parts):
        return json.loads(self.read(*parts))

    def write(self, text, *parts):
        """Writes text to a control file; errors come back from close()."""
        with open(self.path(*parts), "w", encoding="utf-8") as f:
            f.write(text)

    def status(self, name):
        return self.json("collections", name, "status")

    def wait_done(self, name, timeout=120):
        st = wait_for(lambda: (lambda s: s if s["complete"] or s["failed"] else None)(
            self.status(name)), timeout, what=f"the task of {name} to finish")
        return st

    def create(self, name, spec, timeout=120):
        os.mkdir(self.path("collections", name))
        self.write(spec, "collections", name, "create")
        return self.wait_done(name, timeout)

    def docs(self, name):
        out = subprocess.check_output([TISFS_DUMP, "--data", self.data, name], text=True)
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def tisfs():
    root = tempfile.mkdtemp(prefix="tisfs-test-")
    fs = Tisfs(root)
    try:
        yield fs
    finally:
        rc = fs.stop()
        log = fs.log_tail()
        shutil.rmtree(root, ignore_errors=True)
        assert rc == 0, "tisfs exited with %r: %s" % (rc, log)


def mysql_spec(mariadb, table, columns, db="tistest", extra=""):
    """A seed-style relaxed-JSON spec for the MySQL plugin."""
    cols = ",\n    ".join(columns)
    return f"""{{
 datasource: {{ plugin: "MySQL", host: "127.0.0.1", port: {mariadb.port},
               user: "tis", password: "tispw", dbName: "{db}" }},
 table: "{table}",
 columns: [
    {cols}
 ]{extra}
}}
"""
