"""Read back what an offline wandb run wrote: its ``run-*.wandb`` file is a LevelDB-style log of
protobuf records (a 7-byte header, then 32 KiB blocks of checksummed chunks)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7  # ":W&B", magic (2 bytes), version (1 byte)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a wandb run file"
    result, pending, pos = [], b"", HEADER
    while pos + 7 <= len(data):
        space = BLOCK - pos % BLOCK
        if space < 7:  # block trailer padding
            pos += space
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            result.append(record)
    return result


def history(path: Path) -> dict[str, list]:
    """Every logged metric (history item) by key, in logging order."""
    values: dict[str, list] = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                values.setdefault(key, []).append(json.loads(item.value_json))
    return values
