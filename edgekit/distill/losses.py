"""Distillation losses, looked up by key so a run's config names its loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from edgekit.registry import Registry

LossFn = Callable[..., torch.Tensor]
LOSSES: Registry[LossFn] = Registry("loss")


@LOSSES.register("hinton")
def hinton_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """(1 - α)·T²·KL(softmax(t/T) ‖ softmax(s/T)) + α·CE(s, y)  (Hinton et al., 2015), K classes.

    T² keeps the soft term's gradient scale independent of T. With α = 1 this is plain cross-entropy;
    without hard labels (black-box KD on unlabelled data) only the soft term is used. Labels of -1 are
    unlabelled rows: the soft term covers every row, the CE term is the mean over labelled rows only
    (zero in a batch without any). Labels may also be [B, K] class probabilities (mixup's mixed one-hot
    targets); an all-zero row is unlabelled.
    """
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=-1),
        F.log_softmax(teacher_logits / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)
    if labels is None:
        return soft
    known = labels.sum(dim=-1) > 0 if labels.dim() == 2 else labels >= 0
    if bool(known.all()):
        hard = F.cross_entropy(student_logits, labels)
    elif bool(known.any()):
        hard = F.cross_entropy(student_logits[known], labels[known])
    else:
        hard = student_logits.sum() * 0.0  # keeps the graph (and the dtype) for backward
    return (1.0 - alpha) * soft + alpha * hard


@LOSSES.register("ce")
def cross_entropy_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor, **_: float
) -> torch.Tensor:
    """Hard labels only: the baseline student trained without a teacher."""
    return F.cross_entropy(student_logits, labels)


@LOSSES.register("score-mse")
def score_mse_loss(
    student_out: torch.Tensor, teacher_out: torch.Tensor, labels: torch.Tensor | None = None, **_: float
) -> torch.Tensor:
    """Label-free KD: the student regresses the teacher's anomaly score."""
    return F.mse_loss(student_out, teacher_out)


@LOSSES.register("recon-kd")
def reconstruction_kd_loss(
    student_recon: torch.Tensor,
    teacher_recon: torch.Tensor,
    inputs: torch.Tensor,
    alpha: float = 0.5,
    **_: float,
) -> torch.Tensor:
    """Label-free KD for autoencoders: (1 - α)·MSE(student, teacher reconstruction) + α·MSE(student, input)."""
    return (1.0 - alpha) * F.mse_loss(student_recon, teacher_recon) + alpha * F.mse_loss(
        student_recon, inputs
    )


def probs_to_logits(probs: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Teacher probabilities (e.g. from an API) as logits; softmax(log p) == p, so KD is unchanged."""
    return torch.log(probs.clamp(min=eps))


@LOSSES.register("score-rank")
def score_rank_loss(
    student_out: torch.Tensor,
    teacher_out: torch.Tensor,
    labels: torch.Tensor | None = None,
    alpha: float = 0.5,
    **_: float,
) -> torch.Tensor:
    """Label-free KD that keeps the teacher's ranking: (1 - α)·pairwise logistic loss over the batch's
    pairs the teacher orders (RankNet, Burges et al. 2005) + α·MSE to the teacher's score. Scores are
    [B] or [B, 1] on the teacher's (standardized) scale; the MSE term anchors the scale."""
    s, t = student_out.reshape(-1), teacher_out.reshape(-1)
    ds, dt = s[:, None] - s[None, :], t[:, None] - t[None, :]
    ordered = dt > 0
    rank = F.softplus(-ds[ordered]).mean() if bool(ordered.any()) else s.sum() * 0.0
    return (1.0 - alpha) * rank + alpha * F.mse_loss(s, t)
