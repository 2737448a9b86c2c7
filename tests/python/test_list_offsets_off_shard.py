"""ListOffsets by timestamp decompresses the batch it lands in. That happens on glommio's
blocking pool, not on the shard thread: while a lookup decompresses a large gzip batch, the
same shard keeps answering other requests (here ApiVersions on a second connection)."""

import socket
import struct
import time

from kafka import KafkaProducer

BIG = 48 * 1024 * 1024  # decompressed bytes of the batch the lookup lands in


def frame(api_key, version, correlation_id, body):
    client_id = b"off-shard-test"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(sock):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf
    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def list_offsets_v1(topic, timestamp, correlation_id):
    name = topic.encode()
    body = struct.pack(">ii", -1, 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">iiq", 1, 0, timestamp)
    return frame(2, 1, correlation_id, body)


def parse_list_offsets_v1(payload):
    # correlation id, topics[1]: name, partitions[1]: index, error, timestamp, offset
    (_, _) = struct.unpack(">ii", payload[:8])
    (name_len,) = struct.unpack(">h", payload[8:10])
    at = 10 + name_len
    _, _, error, ts, offset = struct.unpack(">iihqq", payload[at:at + 26])
    return error, ts, offset


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def lookup(port, topic, timestamp):
    with connect(port) as s:
        s.sendall(list_offsets_v1(topic, timestamp, 7))
        return parse_list_offsets_v1(read_frame(s))


def test_timestamp_lookup_in_a_huge_compressed_batch_does_not_stall_the_shard(broker_factory, topic):
    # Produce refuses batches that decompress past 32 x max.message.bytes (at least 32 MiB);
    # 2 MiB batches allow this 48 MiB one.
    broker = broker_factory(cores=1, config={"message.max.bytes": "2097152"})
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip", acks=1,
                      max_request_size=BIG + 1_000_000, linger_ms=0)
    p.send(topic, key=b"big", value=b"\0" * BIG, partition=0, timestamp_ms=1_000).get(timeout=60)
    p.send(topic, key=b"small", value=b"x", partition=0, timestamp_ms=2_000).get(timeout=60)
    p.close()
    port = broker.shard_port(0)
    assert lookup(port, topic, 1_500) == (0, 2_000, 1)

    slow = connect(port)
    fast = connect(port)
    started = time.monotonic()
    slow.sendall(list_offsets_v1(topic, 1_000, 1))
    answered_meanwhile = 0
    slow.setblocking(False)
    while True:
        try:
            answer = read_frame_nonblocking(slow)
        except BlockingIOError:
            answer = None
        if answer is not None:
            break
        fast.sendall(frame(18, 0, 2, b""))  # ApiVersions v0
        read_frame(fast)
        answered_meanwhile += 1
        assert time.monotonic() - started < 120, "the lookup never finished"
    elapsed = time.monotonic() - started
    assert parse_list_offsets_v1(answer) == (0, 1_000, 0)
    assert answered_meanwhile >= 5, (
        f"the shard answered {answered_meanwhile} requests during a {elapsed:.2f} s lookup: "
        "it was blocked decompressing")
    slow.close()
    fast.close()


def read_frame_nonblocking(sock):
    """A whole frame if one has started arriving (then read blocking), else BlockingIOError."""
    first = sock.recv(4)  # raises BlockingIOError when nothing is there yet
    assert first, "connection closed"
    sock.setblocking(True)
    while len(first) < 4:
        first += sock.recv(4 - len(first))
    (size,) = struct.unpack(">i", first)
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf
