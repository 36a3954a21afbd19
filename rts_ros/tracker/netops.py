"""The few network calls the tracker makes, in the tracker's shapes (one sequence, seq dim = 1).

Keeps rts_ros.model's layouts (frames, seq, ...) out of the algorithm code. Module names follow the
state-dict prefixes (feature_extractor, target_model, label_encoder, classifier, clf_encoder, decoder).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

BGR_MEAN = (102.9801, 115.9465, 122.7717)


class RTSOps:
    def __init__(self, net: torch.nn.Module, device: torch.device, channels_last: bool = True,
                 fold_bn: bool = True, amp_dtype: torch.dtype | None = None) -> None:
        self.net = net
        self.device = device
        # mixed precision for the backbone and the decoder only; the learners and scores stay float32
        self.amp_dtype = amp_dtype
        self.backbone_net, self.decoder_net = net.feature_extractor, net.decoder
        if fold_bn:  # copies with BatchNorm folded into the convolutions (the caller's net is untouched)
            from rts_ros.tracker.inference_opt import inference_modules

            self.backbone_net, self.decoder_net = inference_modules(net)
        # NHWC convolutions: measured 25-35 % faster backbone/decoder on CPU (oneDNN), same results to ~2e-6
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            for m in (net, self.backbone_net, self.decoder_net):
                m.to(memory_format=torch.channels_last)
        self._mean = torch.tensor(BGR_MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def preprocess(self, rgb255: torch.Tensor) -> torch.Tensor:
        """RGB 0..255 -> BGR minus mean (std 1), spec §3.1."""
        x = self.net.preprocess(rgb255) if hasattr(self.net, "preprocess") else rgb255.flip(1) - self._mean
        return x.contiguous(memory_format=self.memory_format)

    def _amp(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def backbone(self, rgb255: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.preprocess(rgb255)
        with self._amp():
            return self.backbone_net(x)

    def seg_features(self, layer3: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 1, 512, H, W), standard layout (the learners' grouped convs are slower on NHWC)."""
        return self.net.target_model.extract_features(layer3.float()).contiguous().unsqueeze(1)

    @property
    def clf_stride(self) -> int:
        """Stride of the classifier's features and scores (32, or 16 for models built with clf_map_stride 16)."""
        return int(getattr(self.net.config, "clf_map_stride", 32))

    def clf_features(self, layer3: torch.Tensor) -> torch.Tensor:
        return self.net.classifier.extract_features(layer3.float()).contiguous().unsqueeze(1)

    def label_encode(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, H, W) masks in [0, 1] -> (E, W) each (N, 1, K, h, w)."""
        return self.net.label_encoder(masks)

    def seg_init_filter(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.target_model.init_filter(x)

    def seg_optimize(self, filt, x, labels, weights, num_iter: int) -> torch.Tensor:
        """GN steps of the segmentation learner (seg_update.py: one feature pass fewer per iteration)."""
        if num_iter <= 0:
            return filt
        from rts_ros.tracker.seg_update import seg_gn_update

        reg = self.net.target_model.filter_optimizer.residual_module.filter_reg
        return seg_gn_update(filt, x, labels, weights, reg, num_iter)

    def seg_apply(self, x: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
        return self.net.target_model.apply(x, filt)

    def clf_init_filter(self, feats: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """feats (N, 1, C, h, w), boxes (N, 4) crop pixels -> filter (1, C, k, k)."""
        return self.net.classifier.init_filter(feats, boxes.view(-1, 1, 4))

    def clf_optimize(self, filt, feats, labels, weights, num_iter: int) -> torch.Tensor:
        """labels (N, h', w'); weights (N,) tensor or None (uniform)."""
        if num_iter <= 0:
            return filt
        lab = labels.unsqueeze(1)
        w = None if weights is None else weights.view(-1, 1)
        return self.net.classifier.optimize(filt, feats, lab, w, num_iter)

    def clf_scores(self, feat: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
        """(1, 1, C, h, w) -> (1, 1, h+1, w+1) for the even kernel."""
        return self.net.classifier.scores(feat, filt)

    def encode_scores(self, scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Score encoder H + bilinear resize to the seg feature size: (1, 1, K, h, w)."""
        enc, _ = self.net.clf_encoder(scores)
        e = F.interpolate(enc[:, 0], size=size, mode="bilinear", align_corners=False)
        return e.unsqueeze(1)

    def decode(self, fused: torch.Tensor, feats: dict[str, torch.Tensor], out_size: tuple[int, int]) -> torch.Tensor:
        """Decoder -> logits (1, 1, H, W)."""
        with self._amp():
            out = self.decoder_net(fused, feats, out_size)
        return out.float()
