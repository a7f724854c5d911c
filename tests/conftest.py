"""Fixtures for the integration tests: a real MariaDB server and a real tisfs
mount, both started in temporary directories and always torn down.

The binaries come from $TISFS_BUILD (default: ./build). Nothing here sleeps
to synchronise: every wait polls a condition with a deadline."""

import contextlib
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


def port_open(addr):
    import socket
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


class Tisfs:
    """A tisfs daemon in the foreground on a fresh mountpoint (or, with
    mount=False, with --no-mount). args are extra daemon options, e.g.
    ["--http", "127.0.0.1:PORT", "--token-file", FILE]; with --http, start()
    also waits for the listener to accept connections."""

    def __init__(self, root, args=(), mount=True):
        self.root = root
        self.data = os.path.join(root, "state")
        self.mnt = os.path.join(root, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.args, self.mount = list(args), mount
        self.http_addr = None
        if "--http" in self.args:
            v = self.args[self.args.index("--http") + 1]
            self.http_addr = v if ":" in v else "127.0.0.1:" + v
        self.proc = None
        self.start()

    def start(self):
        self.stderr = open(os.path.join(self.root, "daemon.err"), "ab")
        cmd = [TISFS] + ([] if self.mount else ["--no-mount"]) + ["-f", "--data", self.data]
        cmd += self.args + ([self.mnt] if self.mount else [])
        self.proc = subprocess.Popen(cmd, stdout=self.stderr, stderr=self.stderr)
        if self.mount:
            wait_for(lambda: is_mounted(self.mnt) or self.proc.poll() is not None, 20,
                     what="the mount")
            assert self.proc.poll() is None, "tisfs exited: " + self.log_tail()
            wait_for(lambda: os.path.isdir(self.path("collections")), 10, what="collections/")
        if self.http_addr:
            wait_for(lambda: self.proc.poll() is not None or port_open(self.http_addr), 20,
                     what=f"the HTTP listener on {self.http_addr}")
            assert self.proc.poll() is None, "tisfs exited: " + self.log_tail()

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
                self.dump_stacks()
                self.proc.kill()
                self.proc.wait(10)
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)
        self.stderr.close()
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def dump_stacks(self):
        """A daemon that does not stop: every thread's stack into its log, so
        that the failure says where it hangs."""
        if shutil.which("gdb"):
            subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex",
                            "thread apply all bt"], stdout=self.stderr,
                           stderr=subprocess.STDOUT, timeout=60, check=False)

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

    def docs(self, name, exact=False):
        """The collection's documents; exact: numbers as their text (12.30
        is not 12.3)."""
        out = subprocess.check_output([TISFS_DUMP, "--data", self.data, name], text=True)
        return [json.loads(line, parse_float=str if exact else float) for line in out.splitlines()]


@contextlib.contextmanager
def running_tisfs():
    """A daemon in a temporary directory; it must exit cleanly at the end."""
    root = tempfile.mkdtemp(prefix="tisfs-test-")
    fs = Tisfs(root)
    try:
        yield fs
    finally:
        rc = fs.stop()
        log = fs.log_tail()
        shutil.rmtree(root, ignore_errors=True)
        assert rc == 0, "tisfs exited with %r: %s" % (rc, log)


@pytest.fixture
def tisfs():
    with running_tisfs() as fs:
        yield fs


# The password of the MariaDB sandbox's user, which the specs carry: no
# reply and no log of the daemon may show it.
PASSWORD = "tispw"

AJAX = "/solr/config/config.ajax?action=collection_action&emethod="


def envelope(r):
    """The config.ajax reply: HTTP 200 and exactly {success, errormsg,
    bizresult} for every business outcome; errormsg is empty on success and
    says why otherwise."""
    assert r.status_code == 200, (r.status_code, r.text)
    assert "json" in r.headers.get("Content-Type", ""), r.headers
    env = r.json()
    assert isinstance(env, dict) and set(env) == {"success", "errormsg", "bizresult"}, env
    assert isinstance(env["success"], bool), env
    assert isinstance(env["errormsg"], list), env
    assert all(isinstance(m, str) and m for m in env["errormsg"]), env
    assert isinstance(env["bizresult"], dict), env
    assert (env["errormsg"] == []) == env["success"], env
    return env


class Http:
    """A REST client of a tisfs daemon on loopback: requests, never through a
    proxy from the environment. Every reply's text is kept in replies."""

    def __init__(self, addr, token=None):
        import requests
        self.addr, self.base = addr, f"http://{addr}"
        self.session = requests.Session()
        self.session.trust_env = False
        if token is not None:
            self.session.headers["Authorization"] = "Bearer " + token
        self.replies = []

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        r = self.session.request(method, self.base + path, **kw)
        self.replies.append(r.text)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def ajax(self, emethod, body, **kw):
        """POSTs body (relaxed JSON text, or a dict sent as JSON) to
        config.ajax; returns the checked envelope."""
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        data = data.encode() if isinstance(data, str) else data
        return envelope(self.post(AJAX + emethod, data=data, **kw))

    def ok(self, emethod, body, **kw):
        env = self.ajax(emethod, body, **kw)
        assert env["success"], (emethod, env)
        return env["bizresult"]

    def refused(self, emethod, body, **kw):
        """Asserts success:false; returns the messages, one a line."""
        env = self.ajax(emethod, body, **kw)
        assert not env["success"], (emethod, env)
        return "\n".join(env["errormsg"])

    def task(self, taskid, log=False):
        return self.ok("get_task_status", {"taskid": taskid, "log": log})

    def wait_task(self, taskid, timeout=120):
        return wait_for(lambda: (lambda s: s if s["complete"] or s["faild"] else None)(
            self.task(taskid)), timeout, what=f"task {taskid} to finish")

    def create(self, name, spec, timeout=120):
        """do_create with spec (which must name indexName) and waits."""
        taskid = self.ok("do_create", spec)["taskid"]
        st = self.wait_task(taskid, timeout)
        assert st["indexName"] == name, st
        return st

    def select(self, name, query=None, **params):
        """GET /solr/name/select with a query string or params: (status, JSON)."""
        path = f"/solr/{name}/select" + (f"?{query}" if query is not None else "")
        r = self.get(path, params=params or None)
        return r.status_code, r.json()


def start_with_http(root, extra=(), mount=True, token=None):
    """A Tisfs with --http on a free loopback port (another port if one was
    taken meanwhile), with .http, its REST client."""
    for attempt in range(3):
        addr = f"127.0.0.1:{free_port()}"
        try:
            fs = Tisfs(root, ["--http", addr, *extra], mount=mount)
        except AssertionError:
            with open(os.path.join(root, "daemon.err"), "rb") as f:
                if attempt == 2 or b"in use" not in f.read()[-2000:]:
                    raise
            continue
        fs.http = Http(addr, token)
        return fs


def stop_and_check(fs):
    """Stops the daemon: it exits 0, and neither its log nor any REST reply
    shows the spec's password."""
    rc = fs.stop()
    log = fs.log_tail()
    assert rc == 0, "tisfs exited with %r: %s" % (rc, log)
    with open(os.path.join(fs.root, "daemon.err"), "rb") as f:
        assert PASSWORD.encode() not in f.read(), "the password in the daemon's log"
    http = getattr(fs, "http", None)
    leaks = [r[:300] for r in (http.replies if http else []) if PASSWORD in r]
    assert not leaks, leaks


@pytest.fixture
def tisfs_http():
    """A tisfs daemon with a mount and the REST listener on a free loopback
    port; fs.http is its client."""
    root = tempfile.mkdtemp(prefix="tisfs-http-")
    fs = start_with_http(root)
    try:
        yield fs
    finally:
        try:
            stop_and_check(fs)
        finally:
            shutil.rmtree(root, ignore_errors=True)


# The seed's request body (shared/seed/rest-api.md) verbatim: unquoted keys,
# a full-width comma after "TiCDC-Kafka", a '#' comment. Only the addresses
# are moved to loopback ({pd} is filled in by each test): tests never reach
# beyond this machine.
SEED_BODY = """{
 datasource: {
    plugin: "TiKV",
    pdAddrs: "{pd}",
    dbName: "employees"
 },
 table: "employess",
 indexName: "employess",
 columns: [
  {name:"id",token:"ik",search:true}
 ]
 ,
 incr: {
   plugin: "TiCDC-Kafka"，
   mqAddress: "127.0.0.1:1" ,
   topic: "test_topic"  ,
   groupId: "test_group" ,
   offsetResetStrategy: "earliest" #earliest or latest or none
 }
}
"""


# The seed's table: employees.employess, as the seed's own bodies name it.
SEED_ROWS = [(i, f"name {i}") for i in range(1, 501)]


@pytest.fixture(scope="session")
def employess(mariadb):
    """The seed's table in MariaDB, reachable as TiDB's default user (root,
    empty password) over TCP, as the seed's body (which names no user)
    needs. No test changes it."""
    mariadb.execute("CREATE DATABASE IF NOT EXISTS employees",
                    "DROP TABLE IF EXISTS employees.employess",
                    "CREATE TABLE employees.employess (id INT PRIMARY KEY, name VARCHAR(40))")
    con = mariadb.connect("employees")
    with con.cursor() as cur:
        cur.executemany("INSERT INTO employess VALUES (%s, %s)", SEED_ROWS)
    con.close()
    try:
        pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", password="").close()
    except pymysql.err.OperationalError:
        subprocess.run([SANDBOX, "sql", mariadb.root, "-e",
                        "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';"
                        "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"],
                       check=True)
    return mariadb


@pytest.fixture
def pd(etcd):
    """The session's etcd (standing in for PD) with an empty TiDB registry,
    emptied again after."""
    etcd.delete_prefix("/topology/tidb/")
    yield etcd
    etcd.delete_prefix("/topology/tidb/")


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


def free_port():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Etcd:
    """A real etcd (package etcd-server) on loopback, standing in for PD: PD's
    client port serves exactly etcd's JSON gateway (/v3/kv/range, ...)."""

    def __init__(self, root):
        import urllib.request
        self.root = root
        # Straight to loopback: never through a proxy from the environment.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.proc = None
        for _ in range(5):
            if self._launch():
                return
        raise AssertionError("could not start etcd: " + self.log_tail())

    def _launch(self):
        self.port, peer = free_port(), free_port()
        client, peer_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{peer}"
        data = os.path.join(self.root, "data")
        shutil.rmtree(data, ignore_errors=True)
        self.log = open(os.path.join(self.root, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "pd", "--data-dir", data,
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"pd={peer_url}", "--initial-cluster-state", "new",
             "--logger", "zap", "--log-outputs", "stderr"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: self.proc.poll() is not None or self._ready(), 30,
                     what="etcd to answer")
        except AssertionError:
            self.stop()
            raise
        if self.proc.poll() is not None:   # most likely a port taken meanwhile
            self.log.close()
            return False
        return True

    def _ready(self):
        try:
            return self.call("/v3/kv/range", {"key": self.b64("/")}) is not None
        except OSError:
            return False

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def b64(s):
        import base64
        return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()

    def call(self, path, body, timeout=5):
        import urllib.request
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with self.opener.open(req, timeout=timeout) as r:
            return json.loads(r.read())

    def lease(self, ttl):
        return self.call("/v3/lease/grant", {"TTL": ttl})["ID"]

    def put(self, key, value, lease=None):
        body = {"key": self.b64(key), "value": self.b64(value)}
        if lease:
            body["lease"] = lease
        self.call("/v3/kv/put", body)

    def keys(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        r = self.call("/v3/kv/range", {"key": self.b64(prefix), "range_end": self.b64(end)})
        import base64
        return [base64.b64decode(kv["key"]).decode() for kv in r.get("kvs", [])]

    def delete_prefix(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        self.call("/v3/kv/deleterange", {"key": self.b64(prefix), "range_end": self.b64(end)})

    def register_tidb(self, addr, alive=True, version="8.0.11-TiDB-v7.5.0", ttl=45):
        """Registers a TiDB the way TiDB does: an info key, and while it runs
        a ttl key held by a lease."""
        info = {"version": version, "git_hash": "0" * 40, "ip": addr.rsplit(":", 1)[0],
                "status_port": 10080, "deploy_path": "/tidb", "start_timestamp": 1700000000,
                "labels": {}}
        self.put(f"/topology/tidb/{addr}/info", json.dumps(info))
        if alive:
            self.put(f"/topology/tidb/{addr}/ttl", str(time.time_ns()), lease=self.lease(ttl))

    def log_tail(self):
        try:
            with open(os.path.join(self.root, "etcd.log"), "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.log and not self.log.closed:
            self.log.close()


@pytest.fixture(scope="session")
def etcd():
    """A real etcd on free loopback ports, in a temporary directory."""
    root = tempfile.mkdtemp(prefix="tisfs-etcd-")
    e = Etcd(root)
    try:
        yield e
    finally:
        e.stop()
        shutil.rmtree(root, ignore_errors=True)


TISFS_KAFKA_MOCK = os.path.join(BUILD, "tisfs-kafka-mock")


class KafkaMockError(Exception):
    """A command the mock refused, or a produce that was not acknowledged."""


class KafkaMock:
    """tools/tisfs-kafka-mock: librdkafka's mock cluster, a real Kafka peer on
    loopback. Topics are auto-created (4 partitions) by any client that asks
    for their metadata: the mock ignores AllowAutoTopicCreation. A consumer
    group's first join waits 3 s, like Kafka's initial rebalance delay."""

    # Client settings that keep the test clients quick to notice an outage
    # and quick to recover from it (the default reconnect backoff grows to
    # 10 s); their logs go to the logging module, which pytest captures.
    CLIENT = {"reconnect.backoff.max.ms": 500, "socket.timeout.ms": 10000}

    def __init__(self, root, brokers=1, topics=()):
        import logging
        self.root = root
        self.logger = logging.getLogger("tisfs.kafka-mock-client")
        args = [TISFS_KAFKA_MOCK, "--brokers", str(brokers)]
        for name, parts in topics:
            args += ["--topic", f"{name}:{parts}"]
        self.log = open(os.path.join(root, "kafka-mock.err"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        self.buf = b""
        self._prod = self._probe = None
        try:
            line = self._readline(10, "the BOOTSTRAP line")
            if not line.startswith("BOOTSTRAP "):
                raise AssertionError(f"tisfs-kafka-mock said {line!r}: " + self.log_tail())
            self.bootstrap = line.split(" ", 1)[1]
        except BaseException:
            self.stop()
            raise

    def _readline(self, timeout, what):
        import select
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                                     "from tisfs-kafka-mock: " + self.log_tail())
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError("tisfs-kafka-mock exited (%r): %s"
                                         % (self.proc.poll(), self.log_tail()))
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def command(self, line, timeout=10):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._readline(timeout, f"the answer to {line!r}")
        if answer != "OK":
            raise KafkaMockError(f"{line!r}: {answer}")

    def create_topic(self, name, partitions=1):
        self.command(f"topic {name} {partitions}")

    def down(self, broker=None):
        """Every broker (or one) drops its connections and refuses new ones;
        partition leadership does not move."""
        self.command("down" if broker is None else f"down {broker}")

    def up(self, broker=None):
        self.command("up" if broker is None else f"up {broker}")

    def config(self, **extra):
        """Settings for a confluent_kafka client of this cluster."""
        return {"bootstrap.servers": self.bootstrap, "logger": self.logger,
                **self.CLIENT, **extra}

    def _producer(self):
        from confluent_kafka import Producer
        if self._prod is None:
            self._prod = Producer(self.config(**{"linger.ms": 0, "message.timeout.ms": 30000}))
        return self._prod

    def produce(self, topic, value, key=None, partition=None, timeout=30):
        """Produces one message and waits for its acknowledgement; returns
        (partition, offset). Raises KafkaMockError when it is not
        acknowledged in time, and then drops it, so that it cannot turn up
        later."""
        p = self._producer()
        done = {}
        kw = {} if partition is None else {"partition": partition}
        p.produce(topic, value, key=key, on_delivery=lambda err, msg: done.update(
            err=err, msg=msg), **kw)
        left = p.flush(timeout)
        if left or done.get("err") or "msg" not in done:
            p.purge()
            p.flush(0)
            self._prod = None
            raise KafkaMockError(f"produce to {topic}: " + (
                str(done["err"]) if done.get("err") else f"not acknowledged in {timeout}s"))
        return done["msg"].partition(), done["msg"].offset()

    def watermarks(self, topic, partition=0, timeout=10):
        """(first offset the partition still has, the next one's)."""
        self.high_watermark(topic, partition, timeout)  # (makes the probe)
        from confluent_kafka import TopicPartition
        return self._probe.get_watermark_offsets(TopicPartition(topic, partition),
                                                 timeout=timeout, cached=False)

    def high_watermark(self, topic, partition=0, timeout=10):
        """The offset the next message of that partition will get."""
        from confluent_kafka import Consumer, TopicPartition
        if self._probe is None:
            self._probe = Consumer(self.config(**{"group.id": "tisfs-test-probe"}))
        return self._probe.get_watermark_offsets(TopicPartition(topic, partition),
                                                 timeout=timeout, cached=False)[1]

    def messages(self, topic, partition=0, timeout=30):
        """Every (key, value) in that partition, from the first to the high
        watermark, read without a consumer group."""
        from confluent_kafka import Consumer, TopicPartition
        end = self.high_watermark(topic, partition)
        if end == 0:
            return []
        c = Consumer(self.config(**{"group.id": "tisfs-test-reader",
                                    "enable.auto.commit": False}))
        out = []
        try:
            c.assign([TopicPartition(topic, partition, 0)])

            def read():
                msg = c.poll(0.1)
                if msg is not None and not msg.error():
                    out.append((msg.key(), msg.value()))
                    return msg.offset() >= end - 1
                return False
            wait_for(read, timeout, interval=0, what=f"{topic}[{partition}] up to {end}")
        finally:
            c.close()
        return out

    def committed(self, group, topic, partition=0, timeout=10):
        """The offset that group committed for that partition (the next one
        it will read), or None when it committed none."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer(self.config(**{"group.id": group, "enable.auto.commit": False}))
        try:
            tp = c.committed([TopicPartition(topic, partition)], timeout=timeout)[0]
        finally:
            c.close()
        if tp.error:
            raise KafkaMockError(f"committed({group}, {topic}, {partition}): {tp.error}")
        return tp.offset if tp.offset >= 0 else None

    def log_tail(self):
        try:
            with open(os.path.join(self.root, "kafka-mock.err"), "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Closes the clients, then the mock; returns its exit status."""
        if self._probe is not None:
            self._probe.close()
        self._prod = self._probe = None
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()   # EOF is the mock's cue to exit
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def kafka():
    """A fresh mock Kafka cluster on loopback (one broker, no topics)."""
    if not os.access(TISFS_KAFKA_MOCK, os.X_OK):
        pytest.fail(f"{TISFS_KAFKA_MOCK} is missing: build it (ninja -C $TISFS_BUILD)")
    root = tempfile.mkdtemp(prefix="tisfs-kafka-")
    k = KafkaMock(root)
    try:
        yield k
    finally:
        rc = k.stop()
        log = k.log_tail()
        shutil.rmtree(root, ignore_errors=True)
        assert rc == 0, "tisfs-kafka-mock exited with %r: %s" % (rc, log)
