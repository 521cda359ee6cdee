"""Label-free distillation on perturbed windows: the perturbations (shapes, seeds, graded strengths) and
the pipeline that distils the teacher's score on clean + perturbed windows (real MIT-BIH slices)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.distill.config import DistillConfig
from edgekit.distill.label_free import spearman, train_teacher
from edgekit.distill.losses import LOSSES
from edgekit.distill.perturb import PERTURBATIONS, STRENGTHS, perturb_windows
from edgekit.distill.prepare import prepare, tensor
from edgekit.distill.train import predict

SMALL = {"dataset": "mitdb", "window": 32, "hop": 8, "max_rows": 3000}


@pytest.mark.parametrize("kind", sorted(PERTURBATIONS))
@pytest.mark.parametrize("shape", [(32, 1), (64, 9), (1, 9)])
def test_each_perturbation_keeps_shape_and_dtype(kind, shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    for s in STRENGTHS:
        out = PERTURBATIONS[kind](x, s, np.random.default_rng(1))
        assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()
    # the input is never changed in place
    assert np.array_equal(x, np.random.default_rng(0).normal(size=shape).astype(np.float32))


def test_perturbed_set_is_deterministic_under_a_seed_and_covers_the_grid():
    x = np.random.default_rng(0).normal(size=(60, 32, 2)).astype(np.float32)
    a, b, c = perturb_windows(x, 3, seed=7), perturb_windows(x, 3, seed=7), perturb_windows(x, 3, seed=8)
    assert a.x.shape == (180, 32, 2) and len(a) == 180
    assert (
        np.array_equal(a.x, b.x) and np.array_equal(a.kind, b.kind) and np.array_equal(a.strength, b.strength)
    )
    assert not np.array_equal(a.x, c.x)
    assert np.array_equal(a.source, np.tile(np.arange(60), 3))
    assert set(a.kinds) == set(PERTURBATIONS) and set(np.unique(a.kind)) == set(range(len(a.kinds)))
    assert set(np.unique(a.strength).tolist()) == set(STRENGTHS)
    # time warps aside, a perturbed window differs from its source
    changed = np.abs(a.x - x[a.source]).reshape(len(a), -1).max(axis=1) > 0
    assert changed.mean() > 0.9


def test_unknown_perturbation_and_bad_shape_are_refused():
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb_windows(np.zeros((2, 4, 1), np.float32), 1, 0, kinds=("melt",))
    with pytest.raises(ValueError, match=r"\[N, W, C\]"):
        perturb_windows(np.zeros((4, 1), np.float32), 1, 0)


def test_teacher_scores_perturbed_windows_higher_and_grades_with_strength(tmp_path):
    """A real autoencoder teacher on a real MIT-BIH slice: perturbed windows score higher on average than
    clean ones, and the strongest grade scores higher than the weakest (so the scores span a range)."""
    cfg = DistillConfig(out=str(tmp_path), teacher_epochs=8, **SMALL)
    p = prepare(cfg)
    teacher, _spec = train_teacher(p, cfg)
    clean = p.train.x[p.train.y == 0]
    pert = perturb_windows(clean, 2, seed=0)
    s_clean = predict(teacher, tensor(clean))[:, 0].numpy()
    s_pert = predict(teacher, tensor(pert.x))[:, 0].numpy()
    assert s_pert.mean() > s_clean.mean()
    lo, hi = min(STRENGTHS), max(STRENGTHS)
    assert s_pert[pert.strength == hi].mean() > s_pert[pert.strength == lo].mean() > s_clean.mean() - 0.05


def test_perturbed_copies_is_checked_and_has_a_flag():
    from edgekit.cli import build_parser
    from edgekit.distill.config import check_kd
    from edgekit.errors import ConfigError

    assert DistillConfig(out="x").perturbed_copies == 10
    with pytest.raises(ConfigError, match="perturbed_copies must be >= 1, got 0"):
        check_kd(DistillConfig(out="x", perturbed_copies=0))
    args = build_parser().parse_args(
        ["distill", "--dataset", "mitdb", "--out", "o", "--perturbed-copies", "4"]
    )
    assert args.perturbed_copies == 4


def test_score_rank_loss_known_values():
    t = torch.tensor([0.0, 1.0, 2.0])
    # perfectly ordered with margin 10: the ranking term is ~0, the MSE term 100 per row mean
    s = torch.tensor([0.0, 10.0, 20.0])
    assert float(LOSSES.get("score-rank")(s, t, alpha=0.0)) == pytest.approx(0.0, abs=1e-4)
    assert float(LOSSES.get("score-rank")(s, t, alpha=1.0)) == pytest.approx((0 + 81 + 324) / 3)
    # all ties in the student: each of the 3 ordered pairs costs log 2
    flat = torch.zeros(3)
    assert float(LOSSES.get("score-rank")(flat, t, alpha=0.0)) == pytest.approx(np.log(2.0))


def test_spearman():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, a * 10) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_label_free_pipeline_distils_on_the_perturbed_transfer_set(tmp_path):
    """The KD student learns the teacher's score on clean + perturbed windows (the report says how many),
    is a score regressor in the teacher's units, and ranks the test windows like the teacher."""
    from edgekit.distill.pipeline import distill

    report = distill(
        DistillConfig(
            out=str(tmp_path / "m"), teacher_epochs=8, student_epochs=8, perturbed_copies=3, **SMALL
        )
    )
    tr = report["label_free_transfer"]
    assert tr["clean_windows"] > 0 and tr["perturbed_windows"] == 3 * tr["clean_windows"]
    assert tr["chosen"] in tr["candidates_val_spearman"] and report["kd"]["loss"] == tr["chosen"]
    assert report["student"]["arch"]["arch"] == "mlp"
    assert report["student"]["params"] < report["teacher"]["params"] / 20
    # the student's scores agree in rank with the teacher's on real held-out windows
    from edgekit.run import load_run

    run = load_run(tmp_path / "m")
    assert run.info.models["student"].arch == "mlp" and run.info.score == "identity"
    assert max(tr["candidates_val_spearman"].values()) > 0.5
