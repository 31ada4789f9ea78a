"""Read what an offline W&B run wrote: the records of its ``run-<id>.wandb`` file and its files/ folder.

The ``.wandb`` file is a LevelDB-style log (32 KiB blocks; chunks with a 7-byte header: crc32c, little-endian
length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4) after a 7-byte file header ``:W&B`` + magic + version, holding
``wandb_internal_pb2.Record`` messages.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7


def run_dirs(wandb_dir: Path) -> list[Path]:
    """``offline-run-*`` folders under ``wandb_dir`` (WANDB_DIR; runs live in its ``wandb/`` subfolder)."""
    return sorted(Path(wandb_dir).glob("**/offline-run-*"))


def records(run_dir: Path, timeout: float = 30.0) -> list:
    """Every record, once the run's ``exit`` record is on disk: wandb-core may flush the file a moment after
    ``run.finish()`` returns (seen: a 7-byte file 50 ms after finish)."""
    (path,) = Path(run_dir).glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        out = _parse(path)
        if any(r.WhichOneof("record_type") == "exit" for r in out) or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def _parse(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run file"
    out, buf, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer: zero padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if pos + HEADER + length > len(data):  # a chunk still being written
            break
        if kind == 0:  # zero-filled rest of a block
            pos += left
            continue
        buf += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            out.append(record)
            buf = b""
    return out


def history(run_dir: Path) -> list[dict]:
    """Each logged step as ``{key: value}`` (``_step`` included)."""
    rows = []
    for r in records(run_dir):
        if r.WhichOneof("record_type") == "history":
            rows.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item})
    return rows


def config(run_dir: Path) -> dict:
    """The run's config: the one given to ``wandb.init`` (in the run record) plus later updates."""
    out = {}
    for r in records(run_dir):
        kind = r.WhichOneof("record_type")
        updates = r.run.config.update if kind == "run" else r.config.update if kind == "config" else []
        for i in updates:
            out["/".join(i.nested_key) or i.key] = json.loads(i.value_json)
    return out


def summary(run_dir: Path) -> dict:
    out = {}
    for r in records(run_dir):
        if r.WhichOneof("record_type") == "summary":
            for i in r.summary.update:
                out["/".join(i.nested_key) or i.key] = json.loads(i.value_json)
    return out


def artifacts(run_dir: Path) -> list:
    """The artifact records (``.name``, ``.type``, ``.metadata`` JSON, ``.manifest``)."""
    return [r.artifact for r in records(run_dir) if r.WhichOneof("record_type") == "artifact"]
