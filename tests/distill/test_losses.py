import math

import pytest
import torch
import torch.nn.functional as F

from edgekit.distill.losses import LOSSES, probs_to_logits

hinton = LOSSES.get("hinton")


def test_known_value():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])  # softmax(t) = [0.75, 0.25]
    # KL([.75,.25] || [.5,.5]) = .75 ln 1.5 + .25 ln .5
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert hinton(s, t, None, temperature=1.0) == pytest.approx(kl, rel=1e-6)


def test_temperature_squared_scaling():
    torch.manual_seed(0)
    s, t = torch.randn(8, 2), torch.randn(8, 2)
    T = 3.0
    kl_t = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    assert hinton(s, t, None, temperature=T) == pytest.approx(float(kl_t) * T * T, rel=1e-5)


def test_alpha_one_is_cross_entropy_and_alpha_zero_is_soft_only():
    torch.manual_seed(1)
    s, t = torch.randn(16, 2), torch.randn(16, 2)
    y = torch.randint(0, 2, (16,))
    assert hinton(s, t, y, temperature=4.0, alpha=1.0) == pytest.approx(
        float(F.cross_entropy(s, y)), rel=1e-6
    )
    assert hinton(s, t, y, temperature=4.0, alpha=0.0) == pytest.approx(
        float(hinton(s, t, None, temperature=4.0)), rel=1e-6
    )


def test_identical_logits_give_zero_soft_loss():
    s = torch.randn(4, 2)
    assert float(hinton(s, s.clone(), None)) == pytest.approx(0.0, abs=1e-6)


def test_probabilities_as_teacher_logits():
    p = torch.tensor([[0.2, 0.8]])
    assert torch.allclose(torch.softmax(probs_to_logits(p), 1), p, atol=1e-6)


def test_known_value_three_classes():
    s = torch.zeros(1, 3)  # softmax = [1/3, 1/3, 1/3]
    t = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    kl = 0.5 * math.log(1.5) + 2 * 0.25 * math.log(0.75)
    assert hinton(s, t, None, temperature=1.0) == pytest.approx(kl, rel=1e-6)
    # T = 2: teacher softmax(t/2) ∝ sqrt([.5, .25, .25]); the soft term is scaled by T² = 4
    q = torch.tensor([0.5, 0.25, 0.25]).sqrt()
    q = q / q.sum()
    kl2 = float((q * torch.log(q * 3)).sum())
    assert hinton(s, t, None, temperature=2.0) == pytest.approx(4 * kl2, rel=1e-5)
    # with a label: α·CE(s, y) = α·ln 3 for uniform student logits
    y = torch.tensor([2])
    assert hinton(s, t, y, temperature=1.0, alpha=0.25) == pytest.approx(
        0.75 * kl + 0.25 * math.log(3.0), rel=1e-6
    )


def test_unlabelled_rows_get_only_the_soft_term():
    # row 0 labelled (class 1), row 1 unlabelled (-1): CE is the mean over labelled rows only
    s = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    t = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([1, -1])
    soft = float(hinton(s, t, None, temperature=1.0))
    ce = math.log(3.0)
    assert hinton(s, t, y, temperature=1.0, alpha=0.5) == pytest.approx(0.5 * soft + 0.5 * ce, rel=1e-6)
    # a batch with no labels at all: soft term only, and it still backpropagates
    s.requires_grad_(True)
    loss = hinton(s, t, torch.tensor([-1, -1]), temperature=1.0, alpha=0.5)
    assert float(loss) == pytest.approx(0.5 * soft, rel=1e-6)
    loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_mixed_one_hot_targets_are_cross_entropy_with_probabilities():
    hinton_kd_loss = LOSSES.get("hinton")
    # mixup's targets: lam * onehot(a) + (1 - lam) * onehot(b); an all-zero row is unlabelled
    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [1.0, -1.0, 0.0]])
    t = torch.zeros(3, 3)
    y = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    loss = hinton_kd_loss(s, t, y, temperature=1.0, alpha=1.0)
    logp = torch.log_softmax(s, dim=1)
    want = -(0.7 * logp[0, 0] + 0.3 * logp[0, 1] + logp[1, 2]) / 2  # mean over the two labelled rows
    assert float(loss) == pytest.approx(float(want), rel=1e-6)
    # integer labels give the same value as their one-hot rows
    ints = hinton_kd_loss(s[1:2], t[1:2], torch.tensor([2]), temperature=1.0, alpha=1.0)
    assert float(ints) == pytest.approx(
        float(hinton_kd_loss(s[1:2], t[1:2], y[1:2], temperature=1.0, alpha=1.0))
    )
