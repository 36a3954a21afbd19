"""Networks of RTS and STA (spec §2). See docs/ARCHITECTURE.md "Model API" and the module docstrings."""
from rts_ros.model.build import build_rts, build_sta
from rts_ros.model.config import RTSConfig, STAConfig, config_to_kwds, rts_config, sta_config
from rts_ros.model.rts_net import RTSNet
from rts_ros.model.sta_net import STANet

__all__ = ["RTSNet", "STANet", "build_rts", "build_sta", "RTSConfig", "STAConfig", "rts_config", "sta_config",
           "config_to_kwds"]
