"""Write a state dict in the official pytracking checkpoint layout (shared/parity/checkpoints/format.json):
``torch.save`` of {epoch, actor_type, net_type, net, net_info, constructor} where constructor pickles as
``ltr.admin.model_constructor.NetConstructor``. Used by tests and to hand our weights to pytracking."""
from __future__ import annotations

import sys
import types
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import torch

OFFICIAL = {"rts": ("ltr.models.rts.rts_net", "steepest_descent_resnet50_with_clf_encoder", "RTSActor", "RTSNet"),
            "sta": ("ltr.models.lwl.sta_net", "steepest_descent_resnet50", "STAActor", "STANet")}


class NetConstructor:
    """Plain record pickled under the reference's module/qualname (no behaviour)."""

    def __init__(self, fun_name: str, fun_module: str, args: tuple, kwds: dict):
        self.fun_name, self.fun_module, self.args, self.kwds = fun_name, fun_module, args, kwds


NetConstructor.__module__ = "ltr.admin.model_constructor"


@contextmanager
def _fake_ltr_module():
    """Pickle looks classes up by module name when saving; provide the module only while saving."""
    names = ("ltr", "ltr.admin", "ltr.admin.model_constructor")
    saved = {n: sys.modules.get(n) for n in names}
    try:
        for n in names:
            sys.modules[n] = types.ModuleType(n)
        sys.modules["ltr.admin.model_constructor"].NetConstructor = NetConstructor  # type: ignore[attr-defined]
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def write_official_checkpoint(path: str | Path, network: str, state_dict: dict, kwds: dict, epoch: int = 0,
                              legacy: bool = False, extra: dict | None = None) -> Path:
    """Save ``state_dict`` (tensors) with the constructor ``kwds`` as an official-layout file.
    ``legacy=True`` writes the pre-1.6 (non-zip) format."""
    fun_module, fun_name, actor, net_type = OFFICIAL[network]
    net = OrderedDict((k, torch.as_tensor(v)) for k, v in state_dict.items())
    if hasattr(state_dict, "_metadata"):  # module versions, as in a real Module.state_dict()
        net._metadata = state_dict._metadata  # type: ignore[attr-defined]
    data = {"epoch": epoch, "actor_type": actor, "net_type": net_type, "net": net, "net_info": None,
            "constructor": NetConstructor(fun_name, fun_module, (), dict(kwds))}
    data.update(extra or {})
    with _fake_ltr_module():
        torch.save(data, str(path), _use_new_zipfile_serialization=not legacy)
    return Path(path)
