"""Safe reading of official pytracking checkpoints (rts50.pth, sta.pth.tar; spec §1).

Nothing in the file is executed: tensors are read with ``torch.load(weights_only=True)``; the reference
classes the pickle names (NetConstructor, Settings, ...) are replaced by inert stand-ins that only store
their attributes. Any other global makes the load fail with a CheckpointError naming it. Zip (PyTorch >= 1.6)
and legacy files are accepted; tensors are mapped to the CPU.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rts_ros.errors import CheckpointError, ConfigError

CONSTRUCTOR_NAMES = ("ltr.admin.model_constructor.NetConstructor",
                     "dlframework.common.utils.model_constructor.NetConstructor")
STAND_IN_NAMES = CONSTRUCTOR_NAMES + ("ltr.admin.settings.Settings", "ltr.admin.local.EnvironmentSettings",
                                      "ltr.admin.stats.AverageMeter", "ltr.admin.stats.StatValue")

# Reference constructor functions -> our network name.
NETWORKS = {("ltr.models.rts.rts_net", "steepest_descent_resnet50_with_clf_encoder"): "rts",
            ("ltr.models.lwl.sta_net", "steepest_descent_resnet50"): "sta"}
# Keyword overrides the reference tracker passes when it loads each network (spec §1.2 step 3).
TRACKER_OVERRIDES = {"rts": {"backbone_pretrained": False, "clf_filter_size": 4, "fusion_type": "add"},
                     "sta": {"backbone_pretrained": False}}


class StandIn:
    """Inert replacement for a reference class: keeps the pickled attributes, does nothing else."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<stand-in {type(self).__module__}.{type(self).__qualname__} {sorted(self.__dict__)}>"


def _stand_in(full_name: str) -> type:
    module, _, qualname = full_name.rpartition(".")
    return type(qualname, (StandIn,), {"__module__": module, "__qualname__": qualname})


_STAND_INS = {name: _stand_in(name) for name in STAND_IN_NAMES}


def _numpy_globals() -> list[tuple[Any, str]]:
    """Genuine numpy objects that trainer statistics may hold (scalars and dtypes), under both spellings."""
    core = getattr(np, "_core", None) or np.core
    out: list[tuple[Any, str]] = []
    scalar = core.multiarray.scalar
    out += [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
            (np.dtype, "numpy.dtype")]
    dtypes = getattr(np, "dtypes", None)
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        if dtypes is not None and hasattr(dtypes, name):
            out.append((getattr(dtypes, name), f"numpy.dtypes.{name}"))
    return out


def _allowed() -> list[tuple[Any, str]]:
    return [(cls, name) for name, cls in _STAND_INS.items()] + _numpy_globals()


@dataclass(frozen=True)
class Constructor:
    """The checkpoint's constructor record (plain data)."""
    fun_module: str
    fun_name: str
    args: tuple
    kwds: dict


@dataclass
class Checkpoint:
    """What a checkpoint holds that matters: network name, constructor, state dict, other top-level values."""
    path: Path
    network: str
    constructor: Constructor
    state_dict: "OrderedDict[str, torch.Tensor]"
    extras: dict = field(default_factory=dict)

    def effective_kwds(self) -> dict:
        """Stored kwargs with the reference tracker's overrides applied (the kwargs the tracker builds with)."""
        return {**self.constructor.kwds, **TRACKER_OVERRIDES[self.network]}


def _unsafe_global_from(err: Exception) -> str | None:
    m = re.search(r"GLOBAL ([\w.]+)", str(err)) or re.search(r"Unsupported (?:global|class)[^\w]*([\w.]+)", str(err))
    return m.group(1) if m else None


def _refuse(path: Path, name: str) -> CheckpointError:
    return CheckpointError(f"{path}: refusing to load: the file references the global '{name}', which a weights file "
                           f"never needs (it may be malicious); use the official rts50.pth / sta.pth.tar")


def _corrupt(path: Path, why: str) -> CheckpointError:
    why = " ".join(str(why).split())[:160]
    return CheckpointError(f"{path}: file is truncated or corrupt ({why}); download it again")


def _unpickler_reason(err: Exception) -> str:
    """The line of torch's long weights-only message that says what was wrong (e.g. 'Unsupported operand 103');
    its first and last lines are generic advice about weights_only."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        rest = [ln.strip() for ln in text.split(marker, 1)[1].splitlines() if ln.strip()]
        if rest:
            return rest[0]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


def safe_load(path: str | Path) -> Any:
    """Unpickle a torch checkpoint without executing anything from it (tensors on the CPU)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; pass the checkpoint file itself (rts50.pth, sta.pth.tar)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path (official files: rts50.pth, sta.pth.tar)")
    if not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
        raise CheckpointError(f"reading checkpoints safely needs PyTorch >= 2.6 (found {torch.__version__}); "
                              f"upgrade torch or convert the file on a machine that has it")
    with open(path, "rb") as fh:
        head = fh.read(4)
    allowed = _allowed()
    if head[:2] == b"PK":
        if not zipfile.is_zipfile(path):
            raise _corrupt(path, "incomplete zip archive")
        try:  # torch does not check the records' CRCs; a flipped bit in a tensor would go unnoticed
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise _corrupt(path, err) from None
        if bad is not None:
            raise _corrupt(path, f"checksum error in record {bad}")
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as err:  # noqa: BLE001 - any parse failure means a damaged file
            raise _corrupt(path, err) from None
        allowed_names = {n for _, n in allowed}
        for name in names:
            if name not in allowed_names:
                raise _refuse(path, name)
    elif not head or head[0] != 0x80:  # legacy files start with a pickle protocol opcode
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither zip nor legacy pickle); "
                              f"pass the official rts50.pth / sta.pth.tar")
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        name = _unsafe_global_from(err)
        if name:
            raise _refuse(path, name) from None
        raise _corrupt(path, _unpickler_reason(err)) from None
    except Exception as err:  # noqa: BLE001 - EOFError, RuntimeError from the zip reader, ...
        raise _corrupt(path, f"{type(err).__name__}: {err}") from None


def _constructor(path: Path, obj: Any) -> Constructor:
    if not isinstance(obj, StandIn) or not all(hasattr(obj, a) for a in ("fun_name", "fun_module", "kwds")):
        raise CheckpointError(f"{path}: 'constructor' is not a pytracking NetConstructor; "
                              f"this is not an official RTS/STA checkpoint")
    mod = str(obj.fun_module)
    if mod.startswith("dlframework."):
        mod = "ltr." + mod[len("dlframework."):]
    kwds = obj.kwds
    if not isinstance(kwds, dict):
        raise CheckpointError(f"{path}: constructor kwds is {type(kwds).__name__}, expected a dict")
    return Constructor(mod, str(obj.fun_name), tuple(getattr(obj, "args", ()) or ()), dict(kwds))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read an official checkpoint safely: network name, constructor, state dict (not yet checked)."""
    path = Path(path)
    data = safe_load(path)
    if not isinstance(data, dict) or "net" not in data or "constructor" not in data:
        keys = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not a pytracking checkpoint (no 'net'/'constructor' entries; found {keys}); "
                              f"pass the official rts50.pth or sta.pth.tar")
    cons = _constructor(path, data["constructor"])
    network = NETWORKS.get((cons.fun_module, cons.fun_name))
    if network is None:
        raise CheckpointError(f"{path}: unsupported network {cons.fun_module}.{cons.fun_name}; only RTS "
                              f"(rts50.pth) and STA (sta.pth.tar) checkpoints can be converted")
    if cons.args:
        raise CheckpointError(f"{path}: constructor has positional args {cons.args!r}; not an RTS/STA checkpoint")
    net = data["net"]
    if not isinstance(net, dict) or not all(isinstance(v, torch.Tensor) for v in net.values()):
        raise CheckpointError(f"{path}: 'net' is not a state dict of tensors; the file is not an RTS/STA checkpoint")
    extras = {k: v for k, v in data.items() if k in ("epoch", "actor_type", "net_type") and
              isinstance(v, (int, str))}
    return Checkpoint(path, network, cons, OrderedDict(net), extras)


def _kind(t: torch.Tensor) -> str:
    if t.dtype == torch.bool:
        return "bool"
    if t.is_complex():
        return "complex"
    return "float" if t.is_floating_point() else "integer"


def check_state(reference: dict, state: dict, what: str) -> None:
    """One-line CheckpointError unless ``state`` has exactly ``reference``'s keys, shapes and kinds of dtype
    (float/integer) and finite floats. ``reference`` may hold meta tensors: nothing is allocated here."""
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    if missing or unexpected:
        raise CheckpointError(
            f"{what}: state dict does not match the network built from its kwargs: {len(missing)} missing keys "
            f"(first: {', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected keys "
            f"(first: {', '.join(unexpected[:3]) or '-'}); the file is incomplete or belongs to another network")
    bad = [k for k in reference if tuple(reference[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise CheckpointError(f"{what}: {len(bad)} tensors have the wrong shape (first: {k} is "
                              f"{list(state[k].shape)}, expected {list(reference[k].shape)}); the constructor kwargs "
                              f"do not describe these weights")
    # load_state_dict casts silently: integer weights would load as garbage and every frame would be LOST
    wrong = [k for k in reference if _kind(reference[k]) != _kind(state[k])]
    if wrong:
        k = wrong[0]
        raise CheckpointError(f"{what}: {len(wrong)} tensors have the wrong kind of dtype (first: {k} is "
                              f"{state[k].dtype}, expected {_kind(reference[k])}); the file is corrupt or was "
                              f"written by another tool")
    # NaN/Inf weights load silently and only show later as NaN scores on every frame
    nonfinite = [k for k in reference if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all())]
    if nonfinite:
        raise CheckpointError(f"{what}: {len(nonfinite)} tensors hold NaN or Inf values (first: {nonfinite[0]}); "
                              f"the file is corrupt or comes from a diverged training run")


def load_state_strict(net: nn.Module, state: dict, what: str) -> None:
    """load_state_dict(strict=True) after :func:`check_state` (one-line CheckpointError on any mismatch)."""
    check_state(net.state_dict(), state, what)
    net.load_state_dict(state, strict=True)


def build_loaded(network: str, kwds: dict, state: dict, what: str) -> nn.Module:
    """The network of ``kwds`` holding ``state``. Built on the meta device first, so kwargs from a file that
    describe a far larger network than its tensors fail the shape check instead of allocating it."""
    with torch.device("meta"):
        probe = build_network(network, kwds)
    check_state(probe.state_dict(), state, what)
    net = build_network(network, kwds)
    net.load_state_dict(state, strict=True)
    return net


def build_network(network: str, kwds: dict) -> nn.Module:
    """Freshly built network ('rts'|'sta') from kwargs; ConfigError names a bad argument."""
    from rts_ros.model import build_rts, build_sta

    if network not in ("rts", "sta"):
        raise ConfigError(f"unknown network {network!r}; expected 'rts' or 'sta'")
    return (build_rts if network == "rts" else build_sta)(kwds)


def network_from_checkpoint(ck: Checkpoint) -> nn.Module:
    """Build the network of ``ck`` from its effective kwargs and load its weights strictly (CPU, eval)."""
    try:
        net = build_loaded(ck.network, ck.effective_kwds(), ck.state_dict, str(ck.path))
    except ConfigError as err:
        raise CheckpointError(f"{ck.path}: {err}") from None
    return net.eval()
