"""Training samples: sequence choice + processing, as a deterministic function of (seed, sample index)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rts_ros.data.datasets import SequenceDataset
from rts_ros.train.processing import ProcessingConfig, draw_low_res, process_set
from rts_ros.train.sampler import SequenceSampler


@dataclass
class TrainingBatch:
    """Tensors of B sequences: train frames (T=1) and test frames (S=3), frame-major like the reference.

    images: F,B,3,H,W RGB 0..255; masks: F,B,H,W 0/1; boxes: F,B,4 xywh crop px; labels: F,B,h,w.
    """
    train_images: torch.Tensor
    train_masks: torch.Tensor
    train_boxes: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_masks: torch.Tensor
    test_boxes: torch.Tensor
    test_labels: torch.Tensor

    def to(self, device: torch.device | str) -> "TrainingBatch":
        return TrainingBatch(**{k: v.to(device) for k, v in self.__dict__.items()})


class TrainingSamples(torch.utils.data.Dataset):
    """Map-style dataset of `length` samples; sample i is drawn with the Generator seeded by (seed, i)."""

    def __init__(self, datasets: list[SequenceDataset], weights: list[float], length: int, seed: int,
                 processing: ProcessingConfig, num_test: int = 3, max_gap: int = 100):
        self.sampler = SequenceSampler(datasets, weights, num_test=num_test, max_gap=max_gap)
        self.length = int(length)
        self.seed = int(seed)
        self.processing = processing

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(index)])
        choice = self.sampler.draw(rng)
        ds = self.sampler.datasets[choice.dataset]
        low_res_px = draw_low_res(rng, self.processing)   # one roll for the whole sample
        out = {}
        for mode, ids in (("train", choice.train), ("test", choice.test)):
            frames = [ds.frame(choice.sequence, i) for i in ids]
            proc = process_set([f.image for f in frames], [f.mask for f in frames], [f.box for f in frames],
                               mode, self.processing, rng, low_res_px)
            out[f"{mode}_images"] = proc.images
            out[f"{mode}_masks"] = proc.masks
            out[f"{mode}_boxes"] = proc.boxes
            out[f"{mode}_labels"] = proc.labels
        return out


def collate(samples: list[dict[str, np.ndarray]]) -> TrainingBatch:
    """Stack samples along dim 1 (sequences), keeping frames on dim 0."""
    keys = samples[0].keys()
    return TrainingBatch(**{k: torch.from_numpy(np.stack([s[k] for s in samples], axis=1)) for k in keys})
