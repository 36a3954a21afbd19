"""Checkpoint reading (safe unpickling), conversion and weights folders. See docs/ARCHITECTURE.md."""
from rts_ros.weights.checkpoint import (Checkpoint, Constructor, build_network, load_state_strict,
                                        network_from_checkpoint, read_checkpoint, safe_load)
from rts_ros.weights.convert import ConvertResult, convert_checkpoint, file_sha256
from rts_ros.weights.folder import (WeightsFolder, default_weights_dir, load_network, load_weights_folder,
                                    read_meta, resolve_device, save_network, set_meta_key)

__all__ = ["Checkpoint", "Constructor", "ConvertResult", "WeightsFolder", "build_network", "convert_checkpoint",
           "default_weights_dir", "file_sha256", "load_network", "load_state_strict", "load_weights_folder",
           "network_from_checkpoint", "read_checkpoint", "read_meta", "resolve_device", "safe_load", "save_network",
           "set_meta_key"]
