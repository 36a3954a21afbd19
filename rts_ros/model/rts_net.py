"""The RTS network (spec §2.2-2.6): backbone, segmentation learner, classifier branch, score encoder,
'add' fusion and decoder. Submodule names give the reference state-dict keys (strict loading)."""
from __future__ import annotations

import torch
from torch import nn

from rts_ros.model.backbone import ResNet
from rts_ros.model.classifier import Classifier
from rts_ros.model.config import RTSConfig
from rts_ros.model.decoder import Decoder
from rts_ros.model.encoders import MaskEncoder, resize_scores
from rts_ros.model.learners import SegTargetModel

# Per-channel mean of the 'bgr255' input format, in B, G, R order (std is 1).
BGR_MEAN = (102.9801, 115.9465, 122.7717)


class RTSNet(nn.Module):
    """Layouts: images (N, 3, H, W); learner tensors (frames, seq, C, h, w) (see learners.py, classifier.py).

    Typical use (one sequence): ``x = net.preprocess(rgb)``; ``f = net.extract_backbone(x)``;
    ``tm = net.segmentation_features(f['layer3'])``; ``labels, w = net.label_encoder(mask, tm)``;
    ``tau = net.seg_learner.get_filter(tm5, labels, w, n)``; ``cf = net.classification_features(f['layer3'])``;
    ``flt = net.classifier.get_filter(cf5, boxes, y, n)``; then ``net.segment_target(...)`` on a test frame.
    """

    def __init__(self, cfg: RTSConfig):
        super().__init__()
        self.config = cfg
        ch = cfg.backbone.layer_channels()
        nf = cfg.num_filters
        self.target_model = SegTargetModel(ch["layer3"], cfg.out_feature_dim, nf, cfg.filter_size,
                                           cfg.optim_init_reg, cfg.norm_scale)
        self.label_encoder = MaskEncoder(cfg.label_encoder_dims, nf, 2, cfg.use_bn_in_label_enc)
        self.clf_encoder = MaskEncoder(cfg.label_encoder_dims, nf, 1, cfg.use_bn_in_label_enc)
        self.classifier = Classifier(ch["layer3"], cfg.out_feature_dim, cfg.clf_filter_size, cfg.norm_scale,
                                     cfg.clf_feat_stride, cfg.optim_init_reg, cfg.clf_hinge_threshold,
                                     cfg.clf_activation_leak, cfg.clf_norm_per_location, cfg.clf_map_stride // 16)
        b = cfg.backbone
        self.feature_extractor = ResNet(b.backbone_block, b.backbone_layers, b.backbone_width, b.mrcnn,
                                        colour_mean=BGR_MEAN if b.backbone_colour else None)
        self.decoder = Decoder(nf, ch, cfg.decoder_mdim)
        self.register_buffer("_bgr_mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    @property
    def seg_learner(self) -> SegTargetModel:
        """The segmentation few-shot learner (``target_model`` in the checkpoint)."""
        return self.target_model

    def preprocess(self, img_rgb255: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB 0..255 -> BGR minus the channel mean (no /255)."""
        return img_rgb255.flip(1) - self._bgr_mean.to(img_rgb255.dtype)

    def extract_backbone(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Preprocessed images -> {'layer1'..'layer4'} at strides 4/8/16/32."""
        return self.feature_extractor(x)

    def segmentation_features(self, layer3: torch.Tensor) -> torch.Tensor:
        """Target-model features (N, C, H/16, W/16), L2-normalised."""
        return self.target_model.extract_features(layer3)

    def classification_features(self, layer3: torch.Tensor) -> torch.Tensor:
        """Classifier features (N, C, H/s, W/s), s = config.clf_map_stride (32 in the reference), L2-normalised."""
        return self.classifier.extract_features(layer3)

    @staticmethod
    def apply_seg_filter(feat: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
        """Mask encoding (frames, seq, K, h, w) of features (frames, seq, C, h, w) with tau (seq, K, C, k, k)."""
        return SegTargetModel.apply(feat, filt)

    def encode_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Score encoder H on classifier scores (frames, seq, h, w) -> (frames, seq, K, h, w)."""
        return self.clf_encoder(scores)[0]

    @staticmethod
    def fuse(mask_enc: torch.Tensor, score_enc: torch.Tensor) -> torch.Tensor:
        """'add' fusion: the score encoding is bilinearly resized to the mask encoding and added."""
        return mask_enc + resize_scores(score_enc, tuple(mask_enc.shape[-2:]))

    def segment_target(self, seg_filter: torch.Tensor, tm_feat: torch.Tensor, backbone_feats: dict[str, torch.Tensor],
                       clf_scores: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Test-frame logits (frames, seq, H, W): apply tau, encode and fuse the classifier scores, decode.

        ``out_size`` defaults to 16x the target-model feature size (the network input size)."""
        mask_enc = self.apply_seg_filter(tm_feat, seg_filter)
        fused = self.fuse(mask_enc, self.encode_scores(clf_scores))
        if out_size is None:
            out_size = (16 * tm_feat.shape[-2], 16 * tm_feat.shape[-1])
        return self.decoder(fused, backbone_feats, out_size)
