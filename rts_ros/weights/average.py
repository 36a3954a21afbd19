"""Weight averaging (a "model soup", Wortsman et al., ICML 2022): the element-wise mean of several copies of one
network trained on from the same start. Runs that differ only in seed land in one basin, and their mean often
generalises better than any of them. Only the ``rts`` network is averaged."""
from __future__ import annotations

from pathlib import Path

import torch

from rts_ros.errors import CheckpointError, ConfigError
from rts_ros.weights.folder import load_network, save_network


def average_weight_folders(inputs: list[str | Path], out_dir: str | Path, command: str | None = None) -> Path:
    """Write the mean of the ``rts`` networks of ``inputs`` (two or more weights folders) into ``out_dir``.

    The networks must be built from identical constructor kwargs. Floating-point tensors (weights and BatchNorm
    statistics) are averaged in float64; integer tensors (BatchNorm step counters) are taken from the first.
    The JSON keeps the first folder's tracker settings and calibration; ``training`` records each input's."""
    folders = [Path(p) for p in inputs]
    if len(folders) < 2:
        raise ConfigError(f"weight averaging needs two or more weights folders, got {len(folders)}")
    for f in folders:
        if (f / "sta.json").exists():
            raise ConfigError(f"{f}: has an STA network; only rts networks are averaged (use folders without "
                              f"sta.json/sta.safetensors)")
    nets, metas = zip(*(load_network(f, "rts", "cpu") for f in folders))
    first = metas[0]["constructor"]
    for f, meta in zip(folders[1:], metas[1:]):
        if meta["constructor"] != first:
            diff = sorted(k for k in set(first["kwds"]) | set(meta["constructor"]["kwds"])
                          if first["kwds"].get(k) != meta["constructor"]["kwds"].get(k)) or ["fun_name/fun_module"]
            raise CheckpointError(f"{f}: another network than {folders[0]} (constructor differs in {diff}); "
                                  f"only copies of one network can be averaged")
    states = [n.state_dict() for n in nets]
    mean = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            acc = torch.zeros(ref.shape, dtype=torch.float64)
            for s in states:
                acc += s[key].double()
            mean[key] = (acc / len(states)).to(ref.dtype)
        else:
            mean[key] = ref.clone()
    # a quality model is fitted to one network's signals: the average needs its own (rts-fit-quality)
    extra = {k: v for k, v in metas[0].items() if k not in ("format", "network", "constructor", "source",
                                                                "source_sha256", "training", "tracker", "quality")}
    training = {"command": command or "rts-average " + " ".join(map(str, folders)),
                "averaged_from": [{"folder": str(f), "training": m.get("training")} for f, m in zip(folders, metas)]}
    st, _ = save_network(out_dir, "rts", mean, first["kwds"], fun_module=first["fun_module"],
                         fun_name=first["fun_name"], source="rts.safetensors (rts-average)", training=training,
                         tracker=metas[0].get("tracker"), extra=extra)
    return st
