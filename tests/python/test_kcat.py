"""kcat (librdkafka 2.0.2, an old client): produce lines with keys, consume them back exactly,
and list brokers and topics with -L."""

import json
import shutil
import subprocess

import pytest

from kafka_helpers import CODEC_BITS, codecs_on_disk

TIMEOUT_S = 60


@pytest.fixture(scope="module")
def kcat():
    path = shutil.which("kcat")
    # A missing client is a failure, never a skip: run tests/run-all.sh to install it.
    assert path, "kcat not installed (apt-get install kcat)"
    return path


def run(kcat, args, stdin=None):
    result = subprocess.run([kcat, *args], input=stdin, capture_output=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"kcat {' '.join(args)} exited {result.returncode}\nstderr: {result.stderr.decode()}")
    return result


def test_produce_and_consume_with_keys(kcat, broker, topic):
    lines = [f"key-{i}:value {i} with spaces" for i in range(50)] + ["k-empty:", "k:a:b"]
    payload = "".join(line + "\n" for line in lines).encode()
    run(kcat, ["-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-p", "0"], stdin=payload)
    out = run(kcat, ["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
                     "-e", "-f", "%k:%s\n"])
    # kcat splits on the first ':' only, so "k:a:b" is key "k" and value "a:b".
    assert out.stdout.decode().splitlines() == lines


def test_offsets_in_consumer_output(kcat, broker, topic):
    payload = b"one\ntwo\nthree\n"
    run(kcat, ["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0"], stdin=payload)
    out = run(kcat, ["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
                     "-e", "-f", "%p %o %s\n"])
    assert out.stdout.decode().splitlines() == ["0 0 one", "0 1 two", "0 2 three"]
    # A consumer starting at offset 1 sees only the rest.
    out = run(kcat, ["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "1",
                     "-e", "-f", "%o %s\n"])
    assert out.stdout.decode().splitlines() == ["1 two", "2 three"]


def test_list_metadata(kcat, broker, topic):
    run(kcat, ["-b", broker.bootstrap, "-P", "-t", topic], stdin=b"x\n")
    out = run(kcat, ["-b", broker.bootstrap, "-L", "-J"])
    md = json.loads(out.stdout)
    brokers = sorted((b["id"], b["name"]) for b in md["brokers"])
    assert brokers == [(c, f"127.0.0.1:{broker.shard_port(c)}") for c in range(broker.cores)]
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, f"topics listed: {sorted(topics)}"
    parts = topics[topic]["partitions"]
    assert [p["partition"] for p in parts] == [0]
    assert parts[0]["leader"] in range(broker.cores)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce_is_stored_compressed(kcat, broker, topic, codec):
    # Compressible lines, so librdkafka has every reason to compress. librdkafka silently
    # falls back to no compression when it believes the broker cannot take the codec (it
    # infers that from ApiVersions), so the codec on disk shows what the client decided.
    lines = [f"{i}:" + "z" * 500 for i in range(100)]
    run(kcat, ["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K:", "-z", codec],
        stdin="".join(line + "\n" for line in lines).encode())
    out = run(kcat, ["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
                     "-e", "-f", "%k:%s\n"])
    assert out.stdout.decode().splitlines() == lines
    on_disk = codecs_on_disk(broker.data_dir, topic)
    assert on_disk and set(on_disk) == {CODEC_BITS[codec]}, f"codec bits on disk: {on_disk}"
