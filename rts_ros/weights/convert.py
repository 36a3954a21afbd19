"""Conversion of an official checkpoint into a weights folder (safetensors + JSON)."""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rts_ros.errors import CheckpointError
from rts_ros.weights.checkpoint import network_from_checkpoint, read_checkpoint
from rts_ros.weights.folder import save_network


@dataclass(frozen=True)
class ConvertResult:
    network: str
    safetensors: Path
    json: Path
    source_sha256: str
    num_tensors: int


def file_sha256(path: str | Path, progress: bool = False) -> str:
    """SHA-256 of a file, read in 4 MiB chunks (with a progress bar on stderr if asked)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path (official files: rts50.pth, sta.pth.tar)")
    h = hashlib.sha256()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="sha256", file=sys.stderr, leave=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return h.hexdigest()


def convert_checkpoint(src: str | Path, out_dir: str | Path, progress: bool = False,
                       log: Callable[[str], None] | None = None) -> ConvertResult:
    """Read ``src`` safely, build and strictly load its network, write ``<network>.safetensors/.json``
    into ``out_dir``. The JSON holds the effective kwargs (tracker overrides included) and the source sha256."""
    say = log or (lambda msg: None)
    src = Path(src)
    say(f"hashing {src.name}")
    digest = file_sha256(src, progress)
    say("reading checkpoint (safe unpickling, no code executed)")
    ck = read_checkpoint(src)
    say(f"building the {ck.network.upper()} network from the stored kwargs and loading {len(ck.state_dict)} tensors")
    net = network_from_checkpoint(ck)
    say(f"writing {ck.network}.safetensors and {ck.network}.json to {out_dir}")
    st, js = save_network(out_dir, ck.network, net.state_dict(), ck.effective_kwds(),
                          fun_module=ck.constructor.fun_module, fun_name=ck.constructor.fun_name,
                          source=src.name, source_sha256=digest)
    return ConvertResult(ck.network, st, js, digest, len(ck.state_dict))
