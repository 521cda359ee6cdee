"""A small, deterministic training loop with early stopping on validation and a progress bar."""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from edgekit.distill.config import TrainConfig

StepLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def set_seed(seed: int) -> None:
    """Seed every RNG that training touches; CPU kernels are deterministic in practice for these models."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # OMP_NUM_THREADS when set: on a shared, busy CPU two threads per op can be 100x slower than one
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)))


def fit(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    step_loss: StepLoss,
    val_loss: Callable[[nn.Module], float],
    cfg: TrainConfig,
    desc: str,
) -> dict[str, list[float] | int]:
    """Train `model` on rows of `x` (with matching `targets` rows) and keep the best validation state.

    `step_loss(model, xb, tb)` returns the batch loss; `val_loss(model)` is evaluated after each epoch
    with the model in eval mode, lower is better.
    """
    set_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, since_best = float("inf"), copy.deepcopy(model.state_dict()), 0
    history: dict[str, list[float] | int] = {"train_loss": [], "val_loss": []}
    bar = tqdm(range(cfg.epochs), desc=desc, unit="epoch", leave=False, disable=None)
    for _epoch in bar:
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total, batches = 0.0, 0
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            loss = step_loss(model, x[idx], targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        sched.step()
        model.eval()
        with torch.no_grad():
            v = float(val_loss(model))
        history["train_loss"].append(total / max(1, batches))  # type: ignore[union-attr]
        history["val_loss"].append(v)  # type: ignore[union-attr]
        bar.set_postfix(train=f"{total / max(1, batches):.4f}", val=f"{v:.4f}")
        if v < best - 1e-6:
            best, best_state, since_best = v, copy.deepcopy(model.state_dict()), 0
        else:
            since_best += 1
            if since_best >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    history["epochs_run"] = len(history["val_loss"])  # type: ignore[arg-type]
    return history


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def fit_steps(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    step_loss: StepLoss,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> nn.Module:
    """Train for a fixed number of optimizer steps on random batches (drawn with replacement), AdamW with
    a one-cycle schedule, keeping the final weights. Used over augmented transfer sets, where an epoch is
    an arbitrary unit and validation is kept for choosing (--tune) and reporting, not for stopping."""
    set_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(steps), desc="student", unit="step", leave=False, disable=None):
        idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=gen)
        loss = step_loss(model, x[idx], targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()
