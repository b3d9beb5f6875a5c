"""Reading an offline W&B run without syncing it: what the tests check the tracker logged.

    from wandb_offline import read_offline_run
    logged = read_offline_run(run_dir / "wandb" / "offline-run-...")   # {"config", "summary", "history"}
"""

from __future__ import annotations

from pathlib import Path


def read_offline_run(run_dir) -> dict:
    """The config, summary and history of an offline W&B run, read from its run-*.wandb file.

    Current wandb versions keep these only inside the .wandb file when offline
    (no wandb-summary.json): this reads its records (the leveldb log format,
    32 KiB blocks, protobuf `Record` payloads) without syncing anything.
    Returns {"config": {...}, "summary": {...}, "history": [{...}, ...]}.
    """
    import json
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = list(Path(run_dir).glob("run-*.wandb"))
    data = path.read_bytes()
    block, pos, payloads, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:                                  # full record
            payloads.append(chunk)
        elif kind == 2:                                # first fragment
            pending = chunk
        elif kind == 3:                                # middle
            pending += chunk
        elif kind == 4:                                # last
            payloads.append(pending + chunk)

    def key(item):
        return item.key or "/".join(item.nested_key)

    out = {"config": {}, "summary": {}, "history": []}
    for payload in payloads:
        rec = pb.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["config"].update({key(u): json.loads(u.value_json) for u in rec.run.config.update})
        elif kind == "config":
            out["config"].update({key(u): json.loads(u.value_json) for u in rec.config.update})
        elif kind == "summary":
            out["summary"].update({key(u): json.loads(u.value_json) for u in rec.summary.update})
        elif kind == "history":
            out["history"].append({key(u): json.loads(u.value_json) for u in rec.history.item})
    return out
