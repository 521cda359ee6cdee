"""A MiniRocket-style teacher (Dempster et al., 2021) as a torch module that exports to ONNX.

Fixed convolution kernels (the 84 length-9 kernels with three weights of 2 and six of -1) at several
dilations; for each output channel, PPV features (the share of time steps where the convolution exceeds
a threshold) at thresholds fitted as quantiles of the training series' outputs; a linear softmax head
fitted by LBFGS with L2 on the (standardised) features. Kernels and thresholds are buffers, the head is
an nn.Linear with the standardisation folded in, so the state dict rebuilds the whole model and
`torch.onnx.export` writes it like any other teacher. Strong with few labels and trained in seconds,
which is why label-scarce distillation on series uses it.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.models.registry import MODELS
from edgekit.models.sensor import SeriesInput

log = logging.getLogger(__name__)

KERNEL_LENGTH = 9
# series sampled for the threshold quantiles: enough for stable quantiles, cheap on a CPU
QUANTILE_SERIES = 64
# PPV counts a time step as above a threshold through a linear ramp this wide (inputs are normalized, so
# convolution outputs are of order 1) instead of a hard step: the same feature for any value farther than
# RAMP / 2 from the threshold, and a continuous one near it. With a hard step, a value within float error
# of a threshold flipped between torch and onnxruntime (their convolutions sum in different orders) and
# moved a logit by ~4e-4, above the export gate's 1e-4; with the ramp a float error moves it by ~1e-7.
RAMP = 1e-3
# series per forward pass on the host: the PPV comparison holds [batch, features, window, thresholds]
HOST_BATCH = 32


def _kernels() -> torch.Tensor:
    """The 84 MiniRocket kernels [84, 9]: every choice of 3 positions weighted 2, the other six -1."""
    rows = []
    for pos in itertools.combinations(range(KERNEL_LENGTH), 3):
        k = -np.ones(KERNEL_LENGTH, np.float32)
        k[list(pos)] = 2.0
        rows.append(k)
    return torch.from_numpy(np.stack(rows))


N_KERNELS = len(_kernels())


def dilations(window: int, max_dilation: int = 32, count: int = 8) -> list[int]:
    """Dilations spread exponentially up to the largest whose receptive field fits the window."""
    top = np.log2(max(1.0, min(max_dilation, (window - 1) / (KERNEL_LENGTH - 1))))
    return sorted({int(d) for d in 2 ** np.linspace(0, top, count)})


@MODELS.register("rocket")
class RocketTeacher(nn.Module):
    """Input [B, W, C] normalized readings -> class logits [B, out_dim]."""

    def __init__(
        self,
        channels: int,
        window: int,
        out_dim: int,
        n_thresholds: int = 12,
        max_dilation: int = 32,
        shape_channel: bool = True,
    ) -> None:
        super().__init__()
        self.prep = SeriesInput(shape_channel)
        self.cin = channels * (2 if shape_channel else 1)
        self.dilations = dilations(window, max_dilation)
        n_conv = N_KERNELS * self.cin
        # grouped convolution: output channel j reads input channel j // 84
        self.register_buffer("kernels", _kernels()[:, None, :].repeat(self.cin, 1, 1))
        self.register_buffer("thresholds", torch.zeros(len(self.dilations), n_conv, n_thresholds))
        self.head = nn.Linear(len(self.dilations) * n_conv * n_thresholds, out_dim)

    @property
    def n_features(self) -> int:
        return self.head.in_features

    def param_count(self) -> int:
        """Numbers the model stores that were set by data or design: the 84x9 kernel weights (once),
        every threshold, the head's weights and biases (the feature scaler is folded into the head)."""
        head = sum(p.numel() for p in self.head.parameters())
        return N_KERNELS * KERNEL_LENGTH + self.thresholds.numel() + head

    def _conv(self, z: torch.Tensor, i: int) -> torch.Tensor:
        d = self.dilations[i]
        pad = (KERNEL_LENGTH // 2) * d
        return F.conv1d(z, self.kernels, padding=pad, dilation=d, groups=self.cin)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """PPV features [B, n_features]: per dilation, conv channel and threshold, the share of time
        steps above the threshold (through a RAMP-wide linear step: exports as Sub, Clip, ReduceMean)."""
        z = self.prep(x)
        out = []
        for i in range(len(self.dilations)):
            conv = self._conv(z, i).unsqueeze(2) / RAMP  # [B, F, 1, W]
            # time last: the mean reduces a contiguous axis (faster on CPU than thresholds last)
            step = (self.thresholds[i][:, :, None] / RAMP - 0.5).to(conv.dtype)  # [F, T, 1]
            above = (conv - step).clamp_(0.0, 1.0)  # [B, F, T, W], clamped in place: one pass less
            out.append(above.mean(dim=-1).flatten(1))
        return torch.cat(out, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def host_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.features(x[i : i + HOST_BATCH]) for i in range(0, len(x), HOST_BATCH)])

    @torch.no_grad()
    def fit_thresholds(self, x: torch.Tensor, seed: int) -> None:
        """Thresholds at evenly spaced quantiles (0.1..0.9) of each conv channel's output over a seeded
        sample of training series (labelled or not: no label is needed)."""
        rng = np.random.default_rng(seed)
        q = torch.linspace(0.1, 0.9, self.thresholds.shape[-1])
        for i in range(len(self.dilations)):
            idx = rng.choice(len(x), size=min(len(x), QUANTILE_SERIES), replace=False)
            conv = self._conv(self.prep(x[torch.from_numpy(idx)]), i)  # [S, F, W]
            flat = conv.permute(1, 0, 2).reshape(conv.shape[1], -1)
            self.thresholds[i] = torch.quantile(flat, q, dim=1).T

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        labelled: torch.Tensor,
        seed: int,
        l2: float = 1e-3,
        self_train: float = 0.0,
    ) -> RocketTeacher:
        """Thresholds from all training series `x`, the head from the `labelled` ones (class indices `y`).
        `self_train` > 0 refits the head once with the unlabelled series it predicts with at least that
        confidence, labelled by its own prediction (pseudo-labels)."""
        self.fit_thresholds(x, seed)
        feats = self.host_features(x)
        # the scaler comes from every training series, labelled or not: more data, same distribution
        mu, sd = feats.mean(0), feats.std(0, unbiased=False) + 1e-6
        z = (feats - mu) / sd
        w, b = _softmax_regression(z[labelled], y[labelled], self.head.out_features, l2)
        if self_train > 0 and bool((~labelled).any()):
            probs = torch.softmax(z[~labelled] @ w + b, dim=1)
            sure = probs.max(dim=1).values >= self_train
            log.info(
                "rocket teacher: %d pseudo-labelled series at confidence >= %g", int(sure.sum()), self_train
            )
            zz = torch.cat([z[labelled], z[~labelled][sure]])
            yy = torch.cat([y[labelled], probs.argmax(dim=1)[sure]])
            w, b = _softmax_regression(zz, yy, self.head.out_features, l2)
        with torch.no_grad():
            self.head.weight.copy_((w / sd[:, None]).T)
            self.head.bias.copy_(b - (mu / sd) @ w)
        return self.eval()


def _softmax_regression(
    z: torch.Tensor, y: torch.Tensor, k: int, l2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression with an L2 penalty on the weights, LBFGS to convergence."""
    w = torch.zeros(z.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=200, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()
