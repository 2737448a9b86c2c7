"""A userspace TCP proxy in front of one node's Kafka ports: the chaos harness's latency and
blackhole faults (this kernel has no netem).

Runs as its own process (so the harness's threads never slow it down): it listens on
`--listen HOST` at each `--port` and forwards to `--target HOST` at the same port. The node
advertises the listen address, so clients *and* the other nodes' follower fetches go through
it; the controller quorum's traffic does not. Commands on stdin, one per line:

    delay MS       hold every chunk MS milliseconds before forwarding it (0: none)
    blackhole      close every connection and stall new ones (data plane unreachable)
    heal           delay 0, blackhole off
"""
import argparse
import asyncio
import sys
import time


class State:
    def __init__(self):
        self.delay = 0.0
        self.blackhole = False
        self.conns = set()


async def pump(reader, writer, state):
    """Copies one direction; each chunk leaves `state.delay` seconds after it arrived."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await queue.put((time.monotonic() + state.delay, data))
        await queue.put((0, None))
        await sender
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        sender.cancel()
        try:
            writer.close()
        except Exception:
            pass


async def handle(client_reader, client_writer, target, port, state):
    if state.blackhole:
        # A partitioned host: the SYN got through (loopback) but nothing ever answers.
        while state.blackhole:
            await asyncio.sleep(0.1)
        client_writer.close()
        return
    try:
        server_reader, server_writer = await asyncio.open_connection(target, port)
    except OSError:
        client_writer.close()
        return
    task = asyncio.gather(
        pump(client_reader, server_writer, state), pump(server_reader, client_writer, state)
    )
    entry = (task, client_writer, server_writer)
    state.conns.add(entry)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        state.conns.discard(entry)
        client_writer.close()
        server_writer.close()


def command(line, state):
    words = line.split()
    if not words:
        return
    if words[0] == "delay":
        state.delay = float(words[1]) / 1000.0
    elif words[0] == "blackhole":
        state.blackhole = True
        for task, a, b in list(state.conns):
            task.cancel()
            a.close()
            b.close()
    elif words[0] == "heal":
        state.delay = 0.0
        state.blackhole = False


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, action="append", required=True)
    args = parser.parse_args()
    state = State()
    for port in args.port:
        await asyncio.start_server(
            lambda r, w, p=port: handle(r, w, args.target, p, state), args.listen, port,
            reuse_address=True,
        )
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while True:
        line = await stdin.readline()
        if not line:
            return  # the harness is gone
        command(line.decode(), state)
        print("ok", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
