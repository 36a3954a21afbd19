"""Training checkpoints: a weights folder (safetensors + JSON, the format of docs/ARCHITECTURE.md) plus the
optimiser state as plain tensors/dicts (torch.save, read back with weights_only=True).

Layout: <run>/checkpoints/step_0000100/{rts.safetensors, rts.json, train_state.pt, COMPLETE}.
COMPLETE is written last, so a checkpoint interrupted while writing is never resumed from.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from rts_ros.errors import CheckpointError

FORMAT = "rts_ros-weights/1"
BUILDERS = {"rts": ("build_rts", "rts_ros.model"), "sta": ("build_sta", "rts_ros.model")}


def write_weights(folder: str | Path, network: str, net: torch.nn.Module, kwds: dict[str, Any],
                  training: dict[str, Any] | None = None, tracker: dict[str, Any] | None = None,
                  calibration: dict[str, Any] | None = None) -> Path:
    """Write <folder>/<network>.safetensors and <network>.json (rts_ros.weights format); returns the tensor file.

    ``tracker``: the model's recommended TrackerConfig fields (crop size...), read by Tracker.from_weights.
    ``calibration``: the record of how those settings were chosen (carried over from the init weights)."""
    from rts_ros.weights.folder import save_network
    fun_name, fun_module = BUILDERS[network]
    st, _ = save_network(folder, network, net.state_dict(), kwds, fun_module=fun_module, fun_name=fun_name,
                         source=f"{network}.safetensors (rts-train)", training=training, tracker=tracker,
                         extra={"calibration": calibration} if calibration is not None else None)
    return Path(st)


def read_weights(folder: str | Path, network: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, JSON metadata) of <folder>/<network>.{safetensors,json}."""
    folder = Path(folder)
    jpath, spath = folder / f"{network}.json", folder / f"{network}.safetensors"
    if not jpath.is_file() or not spath.is_file():
        raise CheckpointError(f"weights folder {folder} lacks {network}.json/{network}.safetensors; "
                              "point at a folder written by rts-train or rts-convert")
    meta = json.loads(jpath.read_text())
    if meta.get("format") != FORMAT or meta.get("network") != network:
        raise CheckpointError(f"{jpath}: format {meta.get('format')!r}/network {meta.get('network')!r} is not "
                              f"{FORMAT!r}/{network!r}")
    return load_file(str(spath)), meta


def save_checkpoint(run_dir: Path, step: int, network: str, net: torch.nn.Module, kwds: dict[str, Any],
                    optimizer: torch.optim.Optimizer, extra: dict[str, Any], keep: int) -> Path:
    folder = run_dir / "checkpoints" / f"step_{step:07d}"
    if folder.exists():
        shutil.rmtree(folder)
    write_weights(folder, network, net, kwds, training=extra.get("training"), tracker=extra.get("tracker"),
                  calibration=extra.get("calibration"))
    state = {"step": int(step), "optimizer": optimizer.state_dict(),
             "log_rows": int(extra.get("log_rows", 0))}
    torch.save(state, folder / "train_state.pt")
    (folder / "COMPLETE").write_text("ok\n")
    old = complete_checkpoints(run_dir)[:-keep] if keep > 0 else []
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return folder


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Finished checkpoint folders, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if (p / "COMPLETE").is_file())


def load_checkpoint(folder: Path, network: str, net: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Restore the network (strict) and the optimiser; returns the training state dict."""
    state_dict, _ = read_weights(folder, network)
    missing, unexpected = net.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {folder} does not match the configured network (missing "
                              f"{missing[:3]}..., unexpected {unexpected[:3]}...): same config as the run?")
    try:
        state = torch.load(folder / "train_state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:   # corrupt or unsafe file
        raise CheckpointError(f"cannot read {folder / 'train_state.pt'}: {exc}") from exc
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state
