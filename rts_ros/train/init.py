"""Initialisation for training from scratch (spec §5 module-specific init, plus torchvision ResNet practice)."""
from __future__ import annotations

import math

from torch import nn

HE_MODULES = ("label_encoder", "clf_encoder", "bbox_encoder", "segm_encoder", "classifier", "target_model")


def _he_out(conv: nn.Conv2d) -> None:
    n = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / n))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_from_scratch(net: nn.Module) -> None:
    """He-normal convs in the backbone, encoders and learners' feature extractors; BN weight 1 / bias 0 with the
    last BN of each residual block at 0 (blocks start as identities, which speeds up training from scratch);
    encoders' sample-weight heads start at weight 0 / bias 1 (uniform weights). The decoder keeps PyTorch defaults.
    """
    backbone = getattr(net, "feature_extractor", None)
    if backbone is not None:
        for m in backbone.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for block in backbone.modules():
            last = getattr(block, "bn3", None) or (getattr(block, "bn2", None) if hasattr(block, "conv2")
                                                   and not hasattr(block, "conv3") else None)
            if isinstance(last, nn.BatchNorm2d) and hasattr(block, "downsample"):
                nn.init.zeros_(last.weight)
    for name in HE_MODULES:
        module = getattr(net, name, None)
        if module is None:
            continue
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                _he_out(m)
        head = getattr(module, "samp_w_pred", None)
        if isinstance(head, nn.Conv2d):
            nn.init.zeros_(head.weight)
            nn.init.ones_(head.bias)
