"""Training losses of spec §5: Lovász (foreground, on probabilities) and the DiMP hinge classification loss."""
from __future__ import annotations

import torch

from rts_ros.errors import InvalidInputError


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Increments of the Jaccard loss along an order of pixels (gt_sorted: 0/1, already sorted by error).

    J_k = 1 - (G - cumsum g)_k / (G + cumsum(1 - g))_k, Δ_1 = J_1, Δ_k = J_k - J_{k-1}.
    """
    total = gt_sorted.sum()
    intersection = total - gt_sorted.cumsum(0)
    union = total + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return jaccard


def lovasz_loss(probs: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Lovász extension of the foreground Jaccard loss over all pixels together (per_image=False).

    probs: foreground probabilities in [0, 1], any shape; gt: same shape, 0/1 (other values are rounded by > 0.5).
    """
    if probs.shape != gt.shape:
        raise InvalidInputError(
            f"lovasz_loss: probabilities {tuple(probs.shape)} and masks {tuple(gt.shape)} differ in shape; "
            "pass one probability per mask pixel")
    if probs.numel() == 0:
        raise InvalidInputError("lovasz_loss: empty input; pass at least one pixel")
    q = probs.reshape(-1)
    g = (gt.reshape(-1) > 0.5).to(q.dtype)
    errors = (g - q).abs()
    errors_sorted, order = torch.sort(errors, descending=True)
    return torch.dot(errors_sorted, lovasz_grad(g[order]))


def hinge_mse_loss(scores: torch.Tensor, labels: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """DiMP hinge loss: below the threshold the label is 0 and only positive scores are penalised.

    loss = mean((s' - t)^2) with s' = relu(s), t = 0 where label < threshold, else s' = s, t = label.
    """
    if scores.shape != labels.shape:
        raise InvalidInputError(
            f"hinge_mse_loss: scores {tuple(scores.shape)} and labels {tuple(labels.shape)} differ in shape")
    negative = (labels < threshold).to(scores.dtype)
    positive = 1.0 - negative
    s = negative * torch.relu(scores) + positive * scores
    return ((s - positive * labels) ** 2).mean()


def lovasz_hinge_loss(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Binary Lovász hinge on logits (Berman et al. 2018), all pixels together.

    errors e_p = max(0, 1 - s_p * (2 g_p - 1)); loss = Σ_k e_(k) Δ_k with the same Jaccard increments as
    `lovasz_loss`. Unlike the probability version its gradients do not vanish when all logits are near 0,
    which matters when training from scratch (a `seg_loss: lovasz_hinge` choice, not the reference's).
    """
    if logits.shape != gt.shape:
        raise InvalidInputError(
            f"lovasz_hinge_loss: logits {tuple(logits.shape)} and masks {tuple(gt.shape)} differ in shape")
    s = logits.reshape(-1)
    g = (gt.reshape(-1) > 0.5).to(s.dtype)
    errors = 1.0 - s * (2.0 * g - 1.0)
    errors_sorted, order = torch.sort(errors, descending=True)
    return torch.dot(torch.relu(errors_sorted), lovasz_grad(g[order]))
