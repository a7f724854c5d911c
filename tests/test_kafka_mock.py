"""The kafka fixture itself: tools/tisfs-kafka-mock is a real Kafka peer
for kcat and confluent_kafka, consumer groups commit offsets on it, and an
outage (down/up) is seen by clients as one and recovered from."""

import json
import subprocess

import pytest

import cdcgen
from conftest import KafkaMockError, wait_for


def kcat(kafka, *args, stdin=None, timeout=60, check=True):
    r = subprocess.run(["kcat", "-b", kafka.bootstrap, *args], input=stdin,
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"kcat {args}: {r.stderr}"
    return r


def metadata(kafka, topic=None):
    """kcat -L as {topic: partition count}."""
    args = ["-L", "-J"] + (["-t", topic] if topic else [])
    md = json.loads(kcat(kafka, *args).stdout)
    return {t["topic"]: len(t["partitions"]) for t in md["topics"]}


def test_kafka_mock_produce_and_consume_with_kcat(kafka):
    kafka.create_topic("t", 2)
    assert kafka.produce("t", b"v0", key=b"k0", partition=0) == (0, 0)
    assert kafka.produce("t", "v1", key="k1", partition=1) == (1, 0)
    assert kafka.produce("t", b"v2", partition=0) == (0, 1)
    kcat(kafka, "-P", "-t", "t", "-p", "1", "-K", ":", stdin="k3:v3\n")
    assert wait_for(lambda: kafka.high_watermark("t", 1) == 2, 10, what="kcat's message")
    assert kafka.high_watermark("t", 0) == 2

    out = kcat(kafka, "-C", "-t", "t", "-o", "beginning", "-e", "-f", "%p %o %k %s\n").stdout
    assert sorted(out.splitlines()) == ["0 0 k0 v0", "0 1  v2", "1 0 k1 v1", "1 1 k3 v3"]
    assert metadata(kafka) == {"t": 2}


def test_kafka_mock_commands(kafka):
    kafka.create_topic("a", 3)
    with pytest.raises(KafkaMockError, match="already exists"):
        kafka.create_topic("a", 1)
    with pytest.raises(KafkaMockError, match="bad topic"):
        kafka.create_topic("b", 0)
    with pytest.raises(KafkaMockError, match="no broker"):
        kafka.down(2)
    with pytest.raises(KafkaMockError, match="unknown command"):
        kafka.command("reboot")
    assert metadata(kafka) == {"a": 3}


def test_kafka_mock_auto_creates_topics(kafka):
    # The mock ignores AllowAutoTopicCreation (it speaks Metadata up to v2
    # only, before the field existed): asking about a topic creates it with
    # 4 partitions, whatever the client's allow.auto.create.topics says.
    assert metadata(kafka, "nobody-made-me") == {"nobody-made-me": 4}
    assert kafka.produce("also-new", b"x")[1] == 0
    assert metadata(kafka) == {"nobody-made-me": 4, "also-new": 4}


def test_kafka_mock_group_commit_is_visible(kafka):
    kafka.create_topic("g", 1)
    for i in range(5):
        kafka.produce("g", f"m{i}".encode())
    assert kafka.committed("grp", "g", 0) is None

    # kcat's balanced consumer commits what it consumed when it closes.
    out = kcat(kafka, "-G", "grp", "-o", "beginning", "-e", "-f", "%o %s\n", "g").stdout
    assert out.splitlines() == [f"{i} m{i}" for i in range(5)]
    assert wait_for(lambda: kafka.committed("grp", "g", 0) == 5, 10, what="the commit")
    assert kafka.committed("other", "g", 0) is None


def test_kafka_mock_down_then_up(kafka):
    from confluent_kafka import Consumer

    kafka.create_topic("d", 1)
    kafka.produce("d", b"before")
    errors, seen = [], []
    c = Consumer(kafka.config(**{"group.id": "dg", "auto.offset.reset": "earliest",
                                 "auto.commit.interval.ms": 100,
                                 "error_cb": errors.append}))
    try:
        c.subscribe(["d"])

        def poll():
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                seen.append(msg.value())

        def consumed(value):
            poll()
            return value in seen

        wait_for(lambda: consumed(b"before"), 30, interval=0, what="the first message")
        assert not errors

        kafka.down()
        wait_for(lambda: poll() or errors, 10, interval=0,
                 what="the consumer to see the outage")
        assert {e.name() for e in errors} <= {"_TRANSPORT", "_ALL_BROKERS_DOWN"}
        assert kcat(kafka, "-L", "-m", "2", check=False).returncode != 0
        with pytest.raises(KafkaMockError):
            kafka.produce("d", b"during", timeout=2)

        kafka.up()
        assert kafka.produce("d", b"after") == (0, 1)
        wait_for(lambda: consumed(b"after"), 30, interval=0, what="the consumer to recover")
        assert seen == [b"before", b"after"]
        # The group survived the outage and goes on committing.
        wait_for(lambda: kafka.committed("dg", "d", 0) == 2, 10, what="the commit after up")
    finally:
        c.close()
    out = kcat(kafka, "-C", "-t", "d", "-o", "beginning", "-e", "-f", "%s\n").stdout
    assert out.splitlines() == ["before", "after"]


def test_kafka_mock_carries_cdcgen_messages(kafka):
    kafka.create_topic("cdc", 1)
    events = [dict(op="insert", db="d", table="t", ts=cdcgen.tso(1000 + i), row={"id": i})
              for i in range(20)] + [dict(op="resolved", ts=cdcgen.tso(2000))]
    sent = cdcgen.open_protocol(events)
    sent.append((None, cdcgen.canal_json(events[0])))
    for key, value in sent:
        kafka.produce("cdc", value, key=key)
    assert kafka.messages("cdc") == sent


def test_kafka_mock_exits_cleanly_on_sigterm(kafka):
    import signal
    kafka.proc.send_signal(signal.SIGTERM)
    assert kafka.proc.wait(10) == 0
