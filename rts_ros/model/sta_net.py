"""STA box-to-mask network (spec §2.9): box encoders, two few-shot learners sharing one decoder."""
from __future__ import annotations

import torch
from torch import nn

from rts_ros.model.backbone import ResNet
from rts_ros.model.config import STAConfig
from rts_ros.model.decoder import Decoder
from rts_ros.model.encoders import BoxEncoder, MaskEncoder
from rts_ros.model.learners import SegTargetModel
from rts_ros.model.rts_net import BGR_MEAN


class STANet(nn.Module):
    """``forward(image, box)`` -> final logits (1, 1, H, W); H, W multiples of 16.

    The network applies no input normalisation itself. The reference *tracker* feeds the raw RGB 0..255 crop
    (spec §3.1, §6.1); the module fixtures call the network on ``preprocess(crop)`` (BGR minus mean), which
    this class also offers. Which one to feed is the caller's decision.
    """

    def __init__(self, cfg: STAConfig):
        super().__init__()
        self.config = cfg
        b = cfg.backbone
        ch = b.layer_channels()
        nf = cfg.num_filters
        self.feature_extractor = ResNet(b.backbone_block, b.backbone_layers, b.backbone_width, b.mrcnn)
        self.target_model = SegTargetModel(ch["layer3"], cfg.out_feature_dim, nf, cfg.filter_size,
                                           cfg.optim_init_reg, cfg.norm_scale)
        self.target_model_segm = SegTargetModel(None, cfg.out_feature_dim, nf, cfg.filter_size,
                                                cfg.optim_init_reg, cfg.norm_scale)
        self.decoder = Decoder(2 * nf, ch, cfg.decoder_mdim)
        self.label_encoder = BoxEncoder(cfg.label_encoder_dims, nf, cfg.out_feature_dim)
        self.bbox_encoder = BoxEncoder(cfg.label_encoder_dims, nf, cfg.out_feature_dim)
        self.segm_encoder = MaskEncoder(cfg.label_encoder_dims[:3], nf, 2, cfg.use_bn_in_label_enc)

    def preprocess(self, img_rgb255: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB 0..255 -> BGR minus the channel mean (the 'bgr255' format, as RTSNet)."""
        return img_rgb255.flip(1) - torch.tensor(BGR_MEAN, dtype=img_rgb255.dtype,
                                                 device=img_rgb255.device).view(1, 3, 1, 1)

    def run(self, crop_rgb255: torch.Tensor, box_xywh: torch.Tensor, return_iterates: bool = False
            ) -> dict[str, torch.Tensor]:
        """All intermediate results: box_encoding, bbox_mask_encoding, bbox_mask_sw, decoder_in_1,
        pred_coarse, segm_encoding, segm_sw, decoder_in_2, pred_final (+ *_iterates lists if asked).

        ``crop_rgb255`` (1, 3, H, W) network input (see the class docstring); ``box_xywh`` any shape with 4 values (crop pixels)."""
        if crop_rgb255.shape[0] != 1:
            raise ValueError("STANet.run handles one crop at a time")
        size = tuple(crop_rgb255.shape[-2:])
        box = box_xywh.reshape(1, 1, 4)
        feats = self.feature_extractor(crop_rgb255)
        x = self.target_model.extract_features(feats["layer3"]).unsqueeze(1)   # (1, 1, C, h, w)
        n = self.config.optim_iter
        out: dict[str, torch.Tensor] = {}
        lb, _ = self.label_encoder(box, x, size)
        e1, w1 = self.bbox_encoder(box, x, size)
        t1, it1 = self.target_model.get_filter(x, e1, w1, n, return_iterates=True)
        d1 = torch.cat([lb, self.target_model.apply(x, t1)], dim=2)
        m1 = self.decoder(d1, feats, size)
        e2, w2 = self.segm_encoder(torch.sigmoid(m1), x)
        t2, it2 = self.target_model_segm.get_filter(x, e2, w2, n, return_iterates=True)
        d2 = torch.cat([lb, self.target_model_segm.apply(x, t2)], dim=2)
        m2 = self.decoder(d2, feats, size)
        out.update(box_encoding=lb, bbox_mask_encoding=e1, bbox_mask_sw=w1, decoder_in_1=d1, pred_coarse=m1,
                   segm_encoding=e2, segm_sw=w2, decoder_in_2=d2, pred_final=m2)
        if return_iterates:
            out["target_model.filter_iterates"] = torch.stack(it1)
            out["target_model_segm.filter_iterates"] = torch.stack(it2)
        return out

    def forward(self, crop_rgb255: torch.Tensor, box_xywh: torch.Tensor) -> torch.Tensor:
        """Final mask logits (1, 1, H, W) for one crop and one box."""
        return self.run(crop_rgb255, box_xywh)["pred_final"]
