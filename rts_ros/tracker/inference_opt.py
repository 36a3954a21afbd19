"""Inference-only copies of the backbone and decoder: BatchNorm folded into the preceding convolution and
ReLUs made in-place where their input has no other user. Same function (eval-mode BN is affine), ~1e-6
relative difference; the caller's network is left untouched (the copies hold their own weights).
"""
from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("rts_ros.tracker")

_RELU_FUNS = (F.relu, torch.relu)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)
    return fused


def fold_sequentials(module: nn.Module) -> nn.Module:
    """In a copy: Conv2d followed by BatchNorm2d inside an nn.Sequential -> one conv; ReLU after them in place."""
    module = copy.deepcopy(module)
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        layers = list(seq)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                seq[i] = _fold(layers[i], layers[i + 1])
                seq[i + 1] = nn.Identity()
        for i, m in enumerate(seq):
            if isinstance(m, nn.ReLU) and any(isinstance(p, (nn.Conv2d, nn.BatchNorm2d)) for p in seq[:i]):
                m.inplace = True  # its input is a fresh output made inside this Sequential
    return module


def fuse_traced(module: nn.Module) -> nn.Module:
    """torch.fx trace -> conv+BN fusion -> in-place ReLU where the input has a single user."""
    import warnings

    with warnings.catch_warnings():  # torch.fx's optimisation module imports deprecated jit helpers
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.fx.experimental.optimization import fuse

        gm = fuse(module, inplace=False)
    for node in gm.graph.nodes:
        src = node.args[0] if node.args else None
        if node.op == "call_function" and node.target in _RELU_FUNS and isinstance(src, torch.fx.Node) \
                and len(src.users) == 1 and src.op != "placeholder":
            node.target = torch.relu_
            node.kwargs = {}
    gm.graph.lint()
    gm.recompile()
    return gm


def inference_modules(net: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(backbone, decoder) optimised for inference, or the originals when a transformation fails."""
    try:
        backbone = fuse_traced(net.feature_extractor).eval()
    except Exception as e:  # noqa: BLE001 - untraceable custom backbone: use it as is
        log.info("backbone BN folding skipped (%s)", e)
        backbone = net.feature_extractor
    try:
        decoder = fold_sequentials(net.decoder).eval()
    except Exception as e:  # noqa: BLE001
        log.info("decoder BN folding skipped (%s)", e)
        decoder = net.decoder
    return backbone, decoder
