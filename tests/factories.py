"""A tiny classifier factory for the ``module:function`` classifier spec."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 12), nn.ReLU())
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        features = self.features(x)
        return self.head(features), features


def tiny_classifier() -> nn.Module:
    return TinyNet()
