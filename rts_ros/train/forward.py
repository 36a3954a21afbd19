"""Training forwards of spec §5 (RTS) and of STA (box -> mask), returning the weighted losses.

RTS: classifier initialiser + GN iterates from the train frame (autograd through every step), scores of every
iterate on the test frames, segmentation filter learned from the train mask, decoder on each test frame with
the last filter iterate and the encoded scores of the last classifier iterate. The reference's per-test-frame
refinement of the segmentation filter never reaches a prediction (spec §5), so it is not run here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rts_ros.model import RTSNet, STANet
from rts_ros.train.losses import hinge_mse_loss, lovasz_hinge_loss, lovasz_loss
from rts_ros.train.samples import TrainingBatch


@dataclass(frozen=True)
class LossWeights:
    seg: float = 10.0                 # x Lovász
    clf_init: float = 100.0           # initial classifier filter
    clf_intermediate: float = 400.0   # shared by the intermediate iterates (400/4 = 100 each for 5 iterations)
    clf_final: float = 100.0
    bce: float = 0.0                  # optional x binary cross-entropy on the logits (not in the reference)
    bce_balanced: bool = False        # weigh target and background pixels equally in that BCE
    hinge: bool = False               # Lovász hinge on logits instead of Lovász on probabilities
    few_shot: float = 0.0             # optional x few_shot_mask_loss (training from scratch)


def _split(t: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return t[:n], t[n:]


def rts_forward(net: RTSNet, batch: TrainingBatch, weights: LossWeights, clf_iter: int, seg_iter: int,
                teacher: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (floats) for one batch (train frames T, test frames S, sequences B).

    ``teacher`` in [0, 1] (curriculum, not in the reference): each sequence's decoder input is, with probability
    ``teacher``, the label encoding of its test frames' GT masks instead of the learner's mask encoding. From
    scratch the learner's encodings are near-random at first, so the decoder never learns to read them; the GT
    encodings teach it what to decode. (An additive mix t*GT + (1-t)*learned does not work: the decoder amplifies
    the GT part and collapses when t reaches 0.)
    """
    T, B = batch.train_images.shape[:2]
    S = batch.test_images.shape[0]
    H, W = batch.test_images.shape[-2:]
    images = torch.cat([batch.train_images.reshape(T * B, 3, H, W), batch.test_images.reshape(S * B, 3, H, W)])
    feats = net.extract_backbone(net.preprocess(images))
    test_feats = {k: v[T * B:] for k, v in feats.items()}
    tm = net.segmentation_features(feats["layer3"])
    cf = net.classification_features(feats["layer3"])
    tm_train, tm_test = (x.reshape(-1, B, *x.shape[1:]) for x in _split(tm, T * B))
    cf_train, cf_test = (x.reshape(-1, B, *x.shape[1:]) for x in _split(cf, T * B))

    # Classifier: filter iterates from the train frame, scored on the test frames.
    _, iterates = net.classifier.get_filter(cf_train, batch.train_boxes, batch.train_labels, clf_iter,
                                            return_iterates=True)
    test_scores = [net.classifier.scores(cf_test, f) for f in iterates]
    clf_losses = [hinge_mse_loss(s, batch.test_labels, net.config.clf_hinge_threshold) for s in test_scores]
    n_mid = max(len(clf_losses) - 2, 1)
    clf_w = [weights.clf_init] + [weights.clf_intermediate / n_mid] * (len(clf_losses) - 2) + [weights.clf_final]
    if len(clf_losses) == 1:
        clf_w = [weights.clf_init]
    clf_total = sum(w * l for w, l in zip(clf_w, clf_losses))

    # Segmentation learner from the train mask (spatial weights only, zero initial filter).
    labels, sample_w = net.label_encoder(batch.train_masks, tm_train)
    tau = net.seg_learner.get_filter(tm_train, labels, sample_w, seg_iter)
    few_shot_value = None
    if weights.few_shot > 0:
        few_shot_value = few_shot_mask_loss(net, tm_train, batch.train_masks, tm_test, batch.test_masks, seg_iter)
    if teacher > 0:
        mask_enc = net.apply_seg_filter(tm_test, tau)
        gt_enc, _ = net.label_encoder(batch.test_masks, tm_test)
        use_gt = (torch.rand(B, device=gt_enc.device) < teacher).to(gt_enc.dtype).view(1, B, 1, 1, 1)
        mixed = use_gt * gt_enc + (1.0 - use_gt) * mask_enc
        logits = net.decoder(net.fuse(mixed, net.encode_scores(test_scores[-1])), test_feats, (H, W))
    else:
        logits = net.segment_target(tau, tm_test, test_feats, test_scores[-1], out_size=(H, W))
    # seg weight 0 (BCE-only recipes): skip the Lovász sort entirely; the log shows NaN for it
    seg = _seg_loss(logits, batch.test_masks, weights.hinge) if weights.seg > 0 else None
    total = clf_total if seg is None else weights.seg * seg + clf_total
    if weights.bce > 0:
        total = total + weights.bce * bce_loss(logits, batch.test_masks, weights.bce_balanced)
    if few_shot_value is not None:
        total = total + weights.few_shot * few_shot_value
    parts = {"total": float(total.detach()), "lovasz": float("nan") if seg is None else float(seg.detach()),
             "clf_init": float(clf_losses[0].detach()), "clf_final": float(clf_losses[-1].detach())}
    with torch.no_grad():
        pred = logits > 0
        gt = batch.test_masks > 0.5
        inter = (pred & gt).flatten(2).sum(-1).float()
        union = (pred | gt).flatten(2).sum(-1).float()
        parts["iou"] = float(torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter)).mean())
    if few_shot_value is not None:
        parts["few_shot"] = float(few_shot_value.detach())
    return total, parts


def few_shot_mask_loss(net: RTSNet, tm_train: torch.Tensor, train_masks: torch.Tensor, tm_test: torch.Tensor,
                       test_masks: torch.Tensor, num_iter: int) -> torch.Tensor:
    """Auxiliary loss for training from scratch (not in the reference): a one-channel filter fitted by the
    segmentation learner to the train frame's mask (+1 target, -1 background, at feature resolution) must
    predict the test frame's mask. The targets are fixed, so nothing can collapse; the gradient reaches the
    target-model features and the backbone directly, instead of only through the decoder.
    Class-balanced weights; returns the weighted squared error on the test frames divided by its weight sum."""
    def labels(masks: torch.Tensor, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = F.adaptive_avg_pool2d(masks.flatten(0, 1).unsqueeze(1), feat.shape[-2:])
        m = m.view(*masks.shape[:2], 1, *feat.shape[-2:])
        fg = m.mean(dim=(0, 2, 3, 4), keepdim=True).clamp(0.02, 0.98)
        w = m / fg + (1 - m) / (1 - fg)
        return 2 * m - 1, w

    y_train, w_train = labels(train_masks, tm_train)
    y_test, w_test = labels(test_masks, tm_test)
    k = net.seg_learner.filter_size
    filt = tm_train.new_zeros(tm_train.shape[1], 1, tm_train.shape[2], k, k)
    filt = net.seg_learner.optimize(filt, tm_train, y_train, w_train.sqrt(), num_iter)
    pred = net.apply_seg_filter(tm_test, filt)
    return (w_test * (pred - y_test) ** 2).sum() / w_test.sum()


def sta_forward(net: STANet, batch: TrainingBatch, weights: LossWeights, optim_iter: int | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """Every frame of the batch is an independent STA sample: raw RGB crop + tight box of its mask -> mask.

    Loss: weights.seg x (Lovász of the coarse mask + Lovász of the final mask).
    """
    images = torch.cat([batch.train_images.flatten(0, 1), batch.test_images.flatten(0, 1)])
    masks = torch.cat([batch.train_masks.flatten(0, 1), batch.test_masks.flatten(0, 1)])
    boxes = torch.stack([_mask_box(m) for m in masks]).unsqueeze(0)          # (1, N, 4)
    size = tuple(images.shape[-2:])
    n = net.config.optim_iter if optim_iter is None else optim_iter
    feats = net.feature_extractor(images)                                    # STA input is not normalised
    x = net.target_model.extract_features(feats["layer3"]).unsqueeze(0)     # (1, N, C, h, w)
    lb, _ = net.label_encoder(boxes, x, size)
    e1, w1 = net.bbox_encoder(boxes, x, size)
    t1 = net.target_model.get_filter(x, e1, w1, n)
    m1 = net.decoder(torch.cat([lb, net.target_model.apply(x, t1)], dim=2), feats, size)
    e2, w2 = net.segm_encoder(torch.sigmoid(m1), x)
    t2 = net.target_model_segm.get_filter(x, e2, w2, n)
    m2 = net.decoder(torch.cat([lb, net.target_model_segm.apply(x, t2)], dim=2), feats, size)
    gt = masks.unsqueeze(0)
    coarse = _seg_loss(m1, gt, weights.hinge)
    final = _seg_loss(m2, gt, weights.hinge)
    total = weights.seg * (coarse + final)
    if weights.bce > 0:
        total = total + weights.bce * (F.binary_cross_entropy_with_logits(m1, gt)
                                       + F.binary_cross_entropy_with_logits(m2, gt))
    with torch.no_grad():
        pred, g = m2 > 0, gt > 0.5
        inter = (pred & g).flatten(2).sum(-1).float()
        union = (pred | g).flatten(2).sum(-1).float()
        iou = float(torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter)).mean())
    return total, {"total": float(total.detach()), "lovasz": float(final.detach()),
                   "lovasz_coarse": float(coarse.detach()), "iou": iou}


def bce_loss(logits: torch.Tensor, masks: torch.Tensor, balanced: bool) -> torch.Tensor:
    """Binary cross-entropy on logits; ``balanced``: target and background pixels carry half the weight each
    (per frame), so the decision threshold 0 does not drift towards 'all background' for small targets.
    Unlike the Lovász losses, a proper scoring rule: partial information always beats a constant output,
    which keeps a from-scratch decoder from collapsing to constant logits."""
    if not balanced:
        return F.binary_cross_entropy_with_logits(logits, masks)
    fg = masks.flatten(2).mean(-1).clamp(0.01, 0.99)[..., None, None]
    w = masks * (0.5 / fg) + (1 - masks) * (0.5 / (1 - fg))
    return F.binary_cross_entropy_with_logits(logits, masks, weight=w)


def _seg_loss(logits: torch.Tensor, masks: torch.Tensor, hinge: bool) -> torch.Tensor:
    return lovasz_hinge_loss(logits, masks) if hinge else lovasz_loss(torch.sigmoid(logits), masks)


def _mask_box(mask: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
    if len(xs) == 0:
        return mask.new_zeros(4)
    x0, y0 = xs.min(), ys.min()
    return torch.stack([x0, y0, xs.max() - x0 + 1, ys.max() - y0 + 1]).to(mask.dtype)
