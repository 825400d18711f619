"""The inflate attack's step rules: how one sample moves toward its target class.

Each takes the current images (B, C, H, W) in [0, 1] (or their logit-space latent) and the
gradient of the sample's objective, and returns the moved batch; none reads or writes anything
else. ``newton`` moves on the margin of :func:`target_margin`, ``sign`` and ``adam-logit`` on
log p(target | x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def target_margin(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """f = z_t - logsumexp_{j != t} z_j = log p_t - log(1 - p_t), shape (N,)."""
    rows = torch.arange(logits.shape[0])
    others = logits.clone()
    others[rows, targets] = -math.inf
    return logits[rows, targets] - torch.logsumexp(others, dim=1)


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) values shaped to broadcast over (B, C, H, W)."""
    return values.view(-1, *([1] * (like.ndim - 1)))


def newton_step(x: torch.Tensor, gradient: torch.Tensor, margin: torch.Tensor, *, goal: float,
                overshoot: float) -> torch.Tensor:
    """The targeted DeepFool step ``overshoot * (goal - f) / ||g||^2 * g`` on the margin f, kept in the box.

    Gradient components that would push a pixel already at a bound further out are zeroed: they cannot move.
    """
    blocked = ((x <= 0) & (gradient < 0)) | ((x >= 1) & (gradient > 0))
    gradient = torch.where(blocked, torch.zeros_like(gradient), gradient)
    squared_norm = gradient.flatten(1).pow(2).sum(dim=1).clamp_min(1e-12)
    length = overshoot * (goal - margin) / squared_norm
    return (x + _per_sample(length, x) * gradient).clamp(0, 1)


def sign_step(x: torch.Tensor, gradient: torch.Tensor, *, step_size: float) -> torch.Tensor:
    """Iterative FGSM: ``x + step_size * sign(g)``, clipped to [0, 1] (the paper's rule)."""
    return (x + step_size * gradient.sign()).clamp(0, 1)


@dataclass
class AdamState:
    """Per-sample Adam moments (N, C, H, W) and step counts (N,) of the ``adam-logit`` rule."""

    m: torch.Tensor
    v: torch.Tensor
    t: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> "AdamState":
        return cls(m=torch.zeros_like(x), v=torch.zeros_like(x), t=torch.zeros(x.shape[0]))

    def step(self, latent: torch.Tensor, gradient: torch.Tensor, index: torch.Tensor, *, step_size: float) -> torch.Tensor:
        """Ascend ``latent`` (the rows ``index`` of z, with x = sigmoid(z)) by one Adam step; updates the moments."""
        beta1, beta2 = 0.9, 0.999
        self.t[index] += 1
        t = _per_sample(self.t[index], latent)
        self.m[index] = beta1 * self.m[index] + (1 - beta1) * gradient
        self.v[index] = beta2 * self.v[index] + (1 - beta2) * gradient.pow(2)
        m_hat = self.m[index] / (1 - beta1**t)
        v_hat = self.v[index] / (1 - beta2**t)
        return latent + step_size * 20 * m_hat / (v_hat.sqrt() + 1e-8)
