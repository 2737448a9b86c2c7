"""Who wrote a record: the producer id, epoch and sequence of records in a node's partition
logs, read from its segment files after the run with `sluice dump-log --output json`.

The checker needs it to tell a broker's duplicate from a client's: with idempotence a broker
must never append the same (producer id, epoch, sequence) twice, but a record the client
itself sent again under a bumped epoch (librdkafka does so after an epoch bump for a message
it had marked "possibly persisted") carries a new sequence in a new epoch, which no broker
can recognise as a retry.
"""
import json
import subprocess
from pathlib import Path


def identities(sluice, data_dir, topic, wanted):
    """{(partition, offset): (producer_id, producer_epoch, sequence)} for the (partition,
    offset) pairs in `wanted` ({(partition, offset): value}), from the segments under
    `data_dir`; a record whose value is not the one the final read saw there is left out."""
    out = {}
    for partition in sorted({p for p, _ in wanted}):
        files = sorted(str(f) for f in (Path(data_dir) / f"{topic}-{partition}").glob("*.log"))
        if not files:
            continue
        dumped = subprocess.run([sluice, "dump-log", "--output", "json", "--print-data-log",
                                 *files], capture_output=True, text=True, check=True)
        for dump in json.loads(dumped.stdout):
            for batch in dump.get("batches", []):
                for record in batch.get("records") or []:
                    at = (partition, record["offset"])
                    if at in wanted and record.get("payload") == wanted[at]:
                        out[at] = (batch["producer_id"], batch["producer_epoch"],
                                   record["sequence"])
    return out
