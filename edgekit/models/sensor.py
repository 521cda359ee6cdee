"""Sensor-window models. Input is always [batch, window, channels] float32, as the device feeds it."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.models.registry import MODELS


class CausalConv1d(nn.Conv1d):
    """Conv1d that only looks back in time (left padding), so a window's last step never sees the future."""

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(cin, cout, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(cin, cout, kernel_size, dilation)
        self.conv2 = CausalConv1d(cout, cout, kernel_size, dilation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.conv1(x)))
        h = self.drop(F.relu(self.conv2(h)))
        return F.relu(h + self.skip(x))


@MODELS.register("tcn")
class TCN(nn.Module):
    """Temporal convolutional network (dilations 1, 2, 4, ...) reading the last step's features.

    `out_dim=2` gives normal/anomaly logits; `out_dim=1` regresses an anomaly score.
    """

    def __init__(
        self,
        channels: int,
        hidden: int = 64,
        levels: int = 3,
        kernel_size: int = 3,
        dropout: float = 0.1,
        out_dim: int = 2,
    ) -> None:
        super().__init__()
        blocks, cin = [], channels
        for i in range(levels):
            blocks.append(TemporalBlock(cin, hidden, kernel_size, 2**i, dropout))
            cin = hidden
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.transpose(1, 2))  # [B, hidden, W]
        return self.head(h[:, :, -1])


@MODELS.register("autoencoder")
class WindowAutoencoder(nn.Module):
    """Dense autoencoder over a flattened window; trained on normal data, its reconstruction error is
    the anomaly score (the MLPerf Tiny anomaly-detection recipe)."""

    def __init__(
        self,
        channels: int,
        window: int,
        hidden: tuple[int, ...] | list[int] = (512, 256),
        bottleneck: int = 16,
    ) -> None:
        super().__init__()
        dims = [channels * window, *hidden, bottleneck]
        enc, dec = [], []
        for a, b in itertools.pairwise(dims):
            enc += [nn.Linear(a, b), nn.ReLU()]
        rdims = dims[::-1]
        for i, (a, b) in enumerate(itertools.pairwise(rdims)):
            dec += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(rdims) - 2 else [])
        self.encoder = nn.Sequential(*enc[:-1])  # linear bottleneck
        self.decoder = nn.Sequential(*dec)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return self.decoder(self.encoder(flat)).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Anomaly score [B, 1]: log of the mean squared reconstruction error."""
        err = (self.reconstruct(x) - x).pow(2).reshape(x.shape[0], -1).mean(dim=1, keepdim=True)
        return torch.log(err + 1e-8)


@MODELS.register("mlp")
class WindowMLP(nn.Module):
    """Small dense network over the flattened window; a compact student for short windows."""

    def __init__(
        self, channels: int, window: int, hidden: tuple[int, ...] | list[int] = (32, 16), out_dim: int = 1
    ) -> None:
        super().__init__()
        dims = [channels * window, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # flatten (not reshape by x.shape[0]): one Flatten node in ONNX instead of Shape/Gather/Concat
        return self.net(torch.flatten(x, 1))


class SeriesInput(nn.Module):
    """[B, W, C] readings -> [B, C', W], channels first. With `shape_channel`, each channel is followed
    by a per-window z-normalised copy (C' = 2C): appliances differ in amplitude (the first copy, scaled by
    the bundle's normalization) and in shape (the second). Part of the model, so a device still feeds a
    window of raw readings and the exported graph computes both."""

    def __init__(self, shape_channel: bool = False) -> None:
        super().__init__()
        self.shape_channel = shape_channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        if not self.shape_channel:
            return x
        centred = x - x.mean(dim=-1, keepdim=True)
        # population std written out (not torch.std): exports as plain ReduceMean/Sqrt, matches numpy's
        sd = centred.pow(2).mean(dim=-1, keepdim=True).sqrt()
        return torch.cat([x, centred / (sd + 1e-6)], dim=1)


@MODELS.register("cnn-small")
class SmallCNN(nn.Module):
    """The device student for windows > 1: three strided Conv1d + BatchNorm + ReLU layers, global mean and
    max pooling, one Linear layer (about 6.4k parameters at widths 12/24/32 and two input channels).
    Strides shrink the window 8x, so the graph stays small at any window length."""

    def __init__(
        self,
        channels: int,
        out_dim: int,
        widths: tuple[int, ...] | list[int] = (12, 24, 32),
        kernels: tuple[int, ...] | list[int] = (7, 5, 5),
        stride0: int = 2,
        shape_channel: bool = False,
    ) -> None:
        super().__init__()
        self.prep = SeriesInput(shape_channel)
        layers: list[nn.Module] = []
        cin = channels * (2 if shape_channel else 1)
        for i, (w, k) in enumerate(zip(widths, kernels, strict=True)):
            stride = stride0 if i == 0 else 2
            layers += [nn.Conv1d(cin, w, k, stride=stride, padding=k // 2), nn.BatchNorm1d(w), nn.ReLU()]
            cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(2 * cin, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(self.prep(x))
        return self.head(torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1))
