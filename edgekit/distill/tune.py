"""`--tune`: temperature and alpha chosen on VALIDATION from a small grid.

Each grid point trains the KD student on a short schedule and is scored by validation macro-F1; the best
point wins (the first in grid order on a tie). The chooser is given the validation windows and labels
only, so test data cannot influence the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.distill.train import predict
from edgekit.metrics import macro_f1

TEMPERATURES = (1.0, 2.0, 4.0)
ALPHAS = (0.1, 0.3, 0.5)


def choose_kd(
    train: Callable[[float, float], nn.Module],
    x_val: torch.Tensor,
    y_val: np.ndarray,
    n_classes: int,
    temperatures: tuple[float, ...] = TEMPERATURES,
    alphas: tuple[float, ...] = ALPHAS,
) -> dict[str, Any]:
    """`train(temperature, alpha)` for every grid point, each scored on (x_val, y_val); returns the chosen
    temperature and alpha and the grid with every point's validation macro-F1."""
    grid = []
    for t in temperatures:
        for a in alphas:
            pred = predict(train(t, a), x_val).argmax(dim=1).numpy()
            grid.append({"temperature": t, "alpha": a, "val_macro_f1": macro_f1(y_val, pred, n_classes)})
    best = max(grid, key=lambda g: g["val_macro_f1"])  # max keeps the first of equals
    return {
        "temperature": best["temperature"],
        "alpha": best["alpha"],
        "metric": "validation macro-F1",
        "grid": grid,
    }
