"""Adam (Kingma & Ba, ICLR 2015) on one tensor, operation for operation as ``torch.optim.Adam``'s single-tensor
path (no weight decay, no amsgrad, not maximising), so its iterates equal torch's bit for bit (a test checks).

Why not ``torch.optim.Adam`` itself: constructing the first torch optimiser in a process imports
``torch._dynamo``, about 2 s on this project's 2-core machines, which the robustness matrix's feature attack and
resampling games paid inside every ``isgame matrix`` and ``isgame audit`` run.
"""

from __future__ import annotations

import torch


class TensorAdam:
    """``optimiser = TensorAdam(param, lr=0.05)``; then per step ``zero_grad()``, ``loss.backward()``, ``step()``.

    ``param`` is a leaf tensor with ``requires_grad``; ``betas`` and ``eps`` as torch's defaults (0.9, 0.999), 1e-8.
    """

    def __init__(self, param: torch.Tensor, *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.steps = 0

    def zero_grad(self) -> None:
        self.param.grad = None  # torch's default, set_to_none=True

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        grad = self.param.grad
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.steps)  # torch keeps the count in a float tensor and reads it back as a Python float
        step_size = self.lr / (1 - beta1**step)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)
