"""Weights folders (docs/ARCHITECTURE.md): ``rts.safetensors`` + ``rts.json`` and optionally
``sta.safetensors`` + ``sta.json``. The JSON kwargs are authoritative: networks are built from them and the
tensors loaded strictly. No pickle is read at run time."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rts_ros.errors import CheckpointError, ConfigError
from rts_ros.weights.checkpoint import build_loaded

FORMAT = "rts_ros-weights/1"


@dataclass
class WeightsFolder:
    """Networks built from a weights folder (eval mode, on ``device``) and their JSON metadata."""
    path: Path
    rts: nn.Module
    rts_meta: dict
    sta: nn.Module | None = None
    sta_meta: dict = field(default_factory=dict)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto'/None -> cuda if available else cpu; otherwise torch.device(device)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device {device!r} is not valid ({err}); use 'auto', 'cpu' or 'cuda[:N]'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda[:N]'")
    return dev


def _json_safe(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    return v


def save_network(out_dir: str | Path, network: str, state_dict: dict, kwds: dict, *, fun_module: str,
                 fun_name: str, source: str | None = None, source_sha256: str | None = None,
                 training: dict | None = None, tracker: dict | None = None,
                 extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<network>.safetensors`` and ``<network>.json`` into ``out_dir`` (created; files replaced atomically).

    ``tracker``: the model's recommended TrackerConfig fields (e.g. a small model's crop size), used by
    ``Tracker.from_weights`` under the caller's overrides. ``extra``: further JSON keys kept as they are
    (e.g. ``calibration``, how the tracker settings were chosen)."""
    from safetensors.torch import save_file

    if network not in ("rts", "sta"):
        raise ConfigError(f"unknown network {network!r}; expected 'rts' or 'sta'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "network": network,
            "constructor": {"fun_name": fun_name, "fun_module": fun_module, "kwds": _json_safe(kwds)},
            "source_sha256": source_sha256, "source": source}
    if training is not None:
        meta["training"] = _json_safe(training)
    if tracker is not None:
        meta["tracker"] = _json_safe(tracker)
    for key, value in (extra or {}).items():
        meta.setdefault(key, _json_safe(value))
    text = _meta_text(meta, network)
    st, js = out / f"{network}.safetensors", out / f"{network}.json"
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(st) + ".tmp", metadata={"format": "pt", "rts_ros": FORMAT})
    os.replace(str(st) + ".tmp", st)
    _replace_text(js, text)
    return st, js


def set_meta_key(folder: str | Path, network: str, key: str, value) -> Path:
    """Set one key of ``<network>.json`` in an existing weights folder (validated first; replaced atomically),
    e.g. the quality model that rts-fit-quality fits for that network."""
    meta = read_meta(folder, network)
    meta[key] = _json_safe(value)
    js = Path(folder) / f"{network}.json"
    _replace_text(js, _meta_text(meta, network))
    return js


def _meta_text(meta: dict, network: str) -> str:
    try:
        return json.dumps(meta, indent=1, allow_nan=False) + "\n"
    except (TypeError, ValueError) as err:
        raise ConfigError(f"weights metadata for {network} is not plain JSON ({err}); "
                          f"kwargs must be numbers, strings, booleans or lists") from None


def _replace_text(path: Path, text: str) -> None:
    path.with_suffix(path.suffix + ".tmp").write_text(text, encoding="utf-8")
    os.replace(path.with_suffix(path.suffix + ".tmp"), path)


def read_meta(folder: str | Path, network: str) -> dict:
    """The validated JSON of ``network`` in ``folder``."""
    js = Path(folder) / f"{network}.json"
    if not js.is_file():
        raise CheckpointError(f"{js}: missing; a weights folder needs {network}.json and {network}.safetensors "
                              f"(make one with: rts-convert rts50.pth DIR; rts-convert sta.pth.tar DIR)")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{js}: unreadable JSON ({err}); convert the checkpoint again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("network") != network:
        raise CheckpointError(f"{js}: not a {FORMAT} '{network}' file; convert the checkpoint again with rts-convert")
    kwds = meta.get("constructor", {}).get("kwds") if isinstance(meta.get("constructor"), dict) else None
    if not isinstance(kwds, dict):
        raise CheckpointError(f"{js}: no constructor kwds; convert the checkpoint again with rts-convert")
    return meta


def load_network(folder: str | Path, network: str, device: str | torch.device | None = "cpu"
                 ) -> tuple[nn.Module, dict]:
    """Build ``network`` ('rts'|'sta') from ``folder``'s JSON kwargs, load its tensors strictly, move to device."""
    from safetensors.torch import load_file

    meta = read_meta(folder, network)
    st = Path(folder) / f"{network}.safetensors"
    if not st.is_file():
        raise CheckpointError(f"{st}: missing; convert the checkpoint again with rts-convert")
    try:
        state = load_file(str(st), device="cpu")
    except OSError as err:
        raise CheckpointError(f"{st}: cannot read ({err.strerror or err})") from None
    except Exception as err:  # noqa: BLE001 - SafetensorError's import path differs between versions
        raise CheckpointError(f"{st}: corrupt safetensors file ({err}); convert the checkpoint again") from None
    try:
        net = build_loaded(network, meta["constructor"]["kwds"], state, str(st))
    except ConfigError as err:
        raise ConfigError(f"{Path(folder) / (network + '.json')}: {err}") from None
    return net.to(resolve_device(device)).eval(), meta


def load_weights_folder(path: str | Path | None = None, device: str | torch.device | None = "cpu",
                        require_sta: bool = False) -> WeightsFolder:
    """Networks of a weights folder (``None`` = :func:`default_weights_dir`). STA is loaded when present
    (required if ``require_sta``)."""
    folder = Path(path) if path is not None else default_weights_dir()
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: weights folder not found; pass a folder made by rts-convert "
                              f"or set RTS_WEIGHTS")
    rts, rts_meta = load_network(folder, "rts", device)
    sta, sta_meta = None, {}
    if require_sta or (folder / "sta.json").exists():
        sta, sta_meta = load_network(folder, "sta", device)
    return WeightsFolder(folder, rts, rts_meta, sta, sta_meta)


def default_weights_dir() -> Path:
    """The shipped default model: $RTS_WEIGHTS, else <repo>/weights/default, else
    <prefix>/share/rts_ros/weights/default (pip/colcon install)."""
    env = os.environ.get("RTS_WEIGHTS")
    if env:
        if not Path(env).is_dir():
            raise CheckpointError(f"RTS_WEIGHTS={env} is not a folder; point it to a weights folder or unset it")
        return Path(env)
    candidates = [Path(__file__).resolve().parents[2] / "weights" / "default",
                  Path(sys.prefix) / "share" / "rts_ros" / "weights" / "default"]
    try:  # colcon/ament install space
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("rts_ros")) / "weights" / "default")
    except Exception:  # noqa: BLE001 - not a ROS environment or package not installed
        pass
    for c in candidates:
        if (c / "rts.json").is_file():
            return c
    raise CheckpointError("no default weights found (looked in " + ", ".join(map(str, candidates)) +
                          "); set RTS_WEIGHTS to a weights folder or convert the official ones with rts-convert")
