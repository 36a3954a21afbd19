"""Network builders: validated constructor kwargs -> freshly initialised network in eval mode."""
from __future__ import annotations

from typing import Any

from rts_ros.model.config import rts_config, sta_config
from rts_ros.model.rts_net import RTSNet
from rts_ros.model.sta_net import STANet


def build_rts(kwds: dict[str, Any]) -> RTSNet:
    """RTS network from the kwargs of ``steepest_descent_resnet50_with_clf_encoder`` (+ our backbone_* ones).
    Raises ConfigError naming the first unsupported argument."""
    return RTSNet(rts_config(kwds)).eval()


def build_sta(kwds: dict[str, Any]) -> STANet:
    """STA network from the kwargs of ``ltr.models.lwl.sta_net.steepest_descent_resnet50``."""
    return STANet(sta_config(kwds)).eval()
