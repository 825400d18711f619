"""Adam on one tensor through torch's own functional Adam, without constructing a ``torch.optim.Optimizer``.

Why: every ``torch.optim.Optimizer`` method is wrapped in ``torch._disable_dynamo``, which imports
``torch._dynamo`` on its first call, seconds of import time that every digits ``isgame audit`` and ``isgame
matrix`` would pay for the robustness matrix's feature-attack and resampling games (nothing else on that path
imports it: image grids do not import torchvision either). The update is
``torch.optim.adam.adam``, the function ``torch.optim.Adam.step`` calls (its single-tensor path, which Adam takes
for CPU tensors), with the state Adam keeps, so the iterates are torch's bit for bit (``tests/test_adam.py``).
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam


class TensorAdam:
    """``optimiser = TensorAdam(param, lr=0.05)``; then per step ``zero_grad()``, ``loss.backward()``, ``step()``.

    ``param``: a leaf tensor with ``requires_grad``. ``betas`` and ``eps`` default to torch's (0.9, 0.999) and
    1e-8; no weight decay, no AMSGrad, minimising: ``torch.optim.Adam([param], lr=lr)``.
    """

    def __init__(self, param: torch.Tensor, *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        # torch.optim.Adam keeps the step count as a float32 CPU tensor (its _get_scalar_dtype()).
        self.step_count = torch.tensor(0.0, dtype=torch.float32)

    def zero_grad(self) -> None:
        self.param.grad = None  # torch's default, set_to_none=True

    @torch.no_grad()
    def step(self) -> None:
        if self.param.grad is None:
            raise RuntimeError("TensorAdam.step() before backward(): the parameter has no gradient")
        beta1, beta2 = self.betas
        adam([self.param], [self.param.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.step_count],
             foreach=False, amsgrad=False, beta1=beta1, beta2=beta2, lr=self.lr, weight_decay=0.0, eps=self.eps,
             maximize=False)
