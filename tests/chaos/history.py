"""The history: every operation a client invoked, what it was told, and every fault, one JSON
object per line. Times are seconds since the run started (monotonic clock), so the checker
can order an acknowledgement before a later observation."""
import json
import threading
import time


class History:
    def __init__(self, path):
        self.path = path
        self.start = time.monotonic()
        self.file = open(path, "w")
        self.lock = threading.Lock()

    def now(self):
        return round(time.monotonic() - self.start, 4)

    def add(self, **event):
        event.setdefault("t", self.now())
        line = json.dumps(event, separators=(",", ":"))
        with self.lock:
            self.file.write(line + "\n")

    def flush(self):
        with self.lock:
            self.file.flush()

    def close(self):
        with self.lock:
            self.file.flush()
            self.file.close()


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
