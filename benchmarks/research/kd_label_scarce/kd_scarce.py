"""Label-scarce knowledge distillation on real time-series problems (edgekit issue 11, research script).

Recipe (one series = one resampled window; per-series evaluation on the official TEST split):
  data      official TRAIN split by series (stratified) into train / validation (VAL_FRAC); of the train
            part, a stratified `label_fraction` share of the *official TRAIN size* keeps its labels
            (>= 1 per class), the rest is unlabelled. TEST is never used for a choice.
  teacher   MiniRocket-style random convolution features (84 fixed kernels x dilations x PPV biases)
            + L2 softmax regression on the labelled series  [black-box teacher: only probs are used]
  transfer  every train series (labelled + unlabelled) x R augmented views (jitter, scaling, magnitude
            warp, time shift, mixup); the teacher is queried once on exactly the view the student sees.
  student   3-layer strided 1D CNN (~4k params), KD loss (1-a)*T^2*KL + a*CE (CE only where labelled)
  baseline  the same student, same augmentation of the labelled series, same number of optimizer steps,
            hard labels only (mixup views get mixed one-hot targets).
  stats     >= 5 seeds; paired bootstrap over TEST series (seeds x series resampled jointly, series
            paired between KD and no-KD of the same seed) -> 95% CI of the mean macro-F1 gain.

Measured (5 seeds, this script's defaults unless named; logs/ holds the full output of each run):
  PLAID 10%  : teacher 0.553, KD 0.555, noKD 0.466 macro-F1; gain +0.089 CI [+0.044,+0.132]; retention 1.005; 31.2x
  PLAID  5%  : teacher 0.479, KD 0.454, noKD 0.395; gain +0.059 CI [+0.020,+0.098]; retention 0.948
  PLAID 100% : teacher 0.828 (acc 0.872 vs WEASEL-2.0 0.899), KD 0.737, noKD 0.704; CI [-0.009,+0.074]; ret 0.890
  ACSF1 10%  : teacher 0.452, KD 0.386, noKD 0.328; gain +0.058 CI [-0.020,+0.135]; retention 0.857 (1 label/class)

EDGEKIT-READY parts are marked "# [edgekit-ready]"; research-only glue is marked "# [research]".
Run:  OMP_NUM_THREADS=1 PYTHONPATH=/work/main python kd_scarce.py --dataset plaid --label-fraction 0.1
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

VAL_FRAC = 0.2


# ----------------------------------------------------------------------------------------------------
# data  [research]: edgekit.data.ts_format reads the files; resampling is edgekit-ready
# ----------------------------------------------------------------------------------------------------
def resample(series: np.ndarray, length: int) -> np.ndarray:  # [edgekit-ready]
    """[L, C] -> [C, length]: mean-pool when longer (keeps spikes' energy), linear interp when shorter."""
    x = torch.from_numpy(np.ascontiguousarray(series.T, dtype=np.float32))[None]
    if x.shape[-1] >= length:
        y = F.adaptive_avg_pool1d(x, length)
    else:
        y = F.interpolate(x, size=length, mode="linear", align_corners=True)
    return y[0].numpy()


def load(dataset: str, length: int):
    sys.path.insert(0, os.environ.get("EDGEKIT_ROOT", "/work/main"))
    from edgekit.data.ts_format import load_ts_problem, published_accuracies

    spec = {
        "plaid": ("sktime", "datasets/data/PLAID", "PLAID"),
        "acsf1": ("aeon", "datasets/data/ACSF1", "ACSF1"),
    }[dataset]
    tr, te = load_ts_problem(*spec)
    cls = {c: i for i, c in enumerate(tr.class_names)}

    def prep(p):
        x = np.stack([resample(s, length) for s in p.series]).astype(np.float32)  # [N, C, L]
        lens = np.array([s.shape[0] for s in p.series], dtype=np.float32)
        y = np.array([cls[c] for c in p.labels], dtype=np.int64)
        return x, lens, y

    return prep(tr), prep(te), tr.class_names, published_accuracies(spec[2])


def znorm(x: np.ndarray) -> np.ndarray:  # [edgekit-ready] per-series, per-channel z-normalisation
    mu = x.mean(axis=-1, keepdims=True)
    sd = x.std(axis=-1, keepdims=True) + 1e-6
    return ((x - mu) / sd).astype(np.float32)


def to_input(x: np.ndarray, mode: str) -> np.ndarray:  # [edgekit-ready]
    """Raw series (globally scaled) -> model input: 'raw', 'z' (per-series z-norm) or 'both' (2 channels:
    amplitude and shape; appliances differ in both)."""
    if mode == "raw":
        return x
    if mode == "z":
        return znorm(x)
    return np.concatenate([x, znorm(x)], axis=1)


def stratified_split(y: np.ndarray, frac: float, rng: np.random.Generator, min_per_class: int = 1):
    """Indices (taken, rest): `frac` of each class (>= min_per_class when the class has that many)."""
    taken = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = max(min_per_class, int(round(frac * len(idx))))
        taken.extend(idx[: min(k, len(idx))])
    taken = np.array(sorted(taken))
    rest = np.setdiff1d(np.arange(len(y)), taken)
    return taken, rest


def label_mask(y_train: np.ndarray, n_labels: int, n_classes: int, rng: np.random.Generator):  # [edgekit-ready]
    """Stratified choice of n_labels labelled series among the train part, >= 1 per class."""
    n_labels = max(n_labels, n_classes)
    counts = np.bincount(y_train, minlength=n_classes)
    quota = np.maximum(1, np.floor(counts / counts.sum() * n_labels)).astype(int)
    quota = np.minimum(quota, counts)
    order = np.argsort(-(counts / counts.sum() * n_labels - quota))  # largest remainders first
    i = 0
    while quota.sum() < n_labels and i < 10 * n_classes:
        c = order[i % n_classes]
        if quota[c] < counts[c]:
            quota[c] += 1
        i += 1
    lab = np.zeros(len(y_train), dtype=bool)
    for c in range(n_classes):
        idx = np.flatnonzero(y_train == c)
        rng.shuffle(idx)
        lab[idx[: quota[c]]] = True
    return lab


# ----------------------------------------------------------------------------------------------------
# augmentation  [edgekit-ready]: seeded, shape-preserving, works on [N, C, L]
# ----------------------------------------------------------------------------------------------------
def augment(x: np.ndarray, rng: np.random.Generator, p_mix: float = 0.3, mix_pool: np.ndarray | None = None):
    """One augmented view per row. Returns (views, partner index or -1, mixup lambda)."""
    n, c, L = x.shape
    v = x.copy()
    # time shift (circular roll up to 10% of the length) and random crop-resize (90-100%)
    for i in range(n):
        s = int(rng.integers(-L // 10, L // 10 + 1))
        v[i] = np.roll(v[i], s, axis=-1)
        if rng.random() < 0.5:
            w = int(rng.integers(int(0.9 * L), L + 1))
            a = int(rng.integers(0, L - w + 1))
            seg = torch.from_numpy(np.ascontiguousarray(v[i : i + 1, :, a : a + w]))
            v[i] = F.interpolate(seg, size=L, mode="linear", align_corners=True)[0].numpy()
    # magnitude warp: smooth random curve through 5 knots, sigma 0.2
    knots = rng.normal(1.0, 0.2, size=(n, c, 5)).astype(np.float32)
    curve = F.interpolate(torch.from_numpy(knots), size=L, mode="linear", align_corners=True).numpy()
    v = v * curve
    # scaling and jitter (relative to each view's std)
    v = v * rng.normal(1.0, 0.1, size=(n, c, 1)).astype(np.float32)
    v = v + rng.normal(0, 0.03, size=v.shape).astype(np.float32) * v.std(axis=-1, keepdims=True)
    # mixup with a random partner from the pool (the teacher later sees the mixed view)
    partner = np.full(n, -1)
    lam = np.ones(n, dtype=np.float32)
    if p_mix > 0:
        pool = np.arange(n) if mix_pool is None else mix_pool
        for i in range(n):
            if rng.random() < p_mix:
                j = int(rng.choice(pool))
                lam[i] = float(max(rng.beta(0.4, 0.4), 1 - rng.beta(0.4, 0.4)))
                lam[i] = max(lam[i], 1 - lam[i])
                v[i] = lam[i] * v[i] + (1 - lam[i]) * x[j]
                partner[i] = j
    return v.astype(np.float32), partner, lam


# ----------------------------------------------------------------------------------------------------
# teacher  [edgekit-ready as a black-box-style teacher]: MiniRocket-like features + softmax regression
# ----------------------------------------------------------------------------------------------------
class RocketTeacher:
    def __init__(self, length: int, n_bias: int = 12, max_dil: int = 32, seed: int = 0):
        from itertools import combinations

        w = []
        for comb in combinations(range(9), 3):
            k = -np.ones(9, dtype=np.float32)
            k[list(comb)] = 2.0
            w.append(k)
        self.w = torch.from_numpy(np.stack(w))[:, None, :]  # [84, 1, 9]
        max_exp = np.log2(min(max_dil, (length - 1) / 8))
        self.dils = sorted({int(d) for d in 2 ** np.linspace(0, max_exp, 8)})
        self.n_bias = n_bias
        self.rng = np.random.default_rng(seed)
        self.biases = None

    def _conv(self, x: torch.Tensor, d: int) -> torch.Tensor:
        return F.conv1d(x, self.w, padding=4 * d, dilation=d)  # [N, 84, L]

    def fit_biases(self, x: np.ndarray):
        q = torch.tensor(np.linspace(0.1, 0.9, self.n_bias), dtype=torch.float32)
        self.channels = x.shape[1]
        self.biases = []  # per channel, per dilation: [84, n_bias]
        for ch in range(self.channels):
            xt = torch.from_numpy(np.ascontiguousarray(x[:, ch : ch + 1]))
            for d in self.dils:
                idx = self.rng.choice(len(x), size=min(len(x), 64), replace=False)
                out = self._conv(xt[idx], d)  # quantiles of the conv output over random series
                self.biases.append(torch.quantile(out.permute(1, 0, 2).reshape(84, -1), q, dim=1).T)
        return self

    @torch.no_grad()
    def features(self, x: np.ndarray, batch: int = 128) -> np.ndarray:
        feats = []
        pairs = [(ch, d) for ch in range(self.channels) for d in self.dils]
        for s in range(0, len(x), batch):
            f = []
            for (ch, d), b in zip(pairs, self.biases):
                xt = torch.from_numpy(np.ascontiguousarray(x[s : s + batch, ch : ch + 1]))
                out = self._conv(xt, d).sort(-1).values  # [B, 84, L]
                L = out.shape[-1]
                above = L - torch.searchsorted(out, b[None].expand(len(out), -1, -1).contiguous(), right=True)
                f.append((above.float() / L).flatten(1))  # PPV: share of positions > bias, [B, 84*nb]
            feats.append(torch.cat(f, 1))
        return torch.cat(feats).numpy()

    @property
    def n_features(self) -> int:
        return 84 * len(self.dils) * self.n_bias * self.channels

    def params(self, n_classes: int) -> int:
        # kernels (84x9) + one bias threshold per feature + linear head (features x K + K) + feature scaler
        return 84 * 9 + self.n_features + self.n_features * n_classes + n_classes + 2 * self.n_features


def fit_softmax(f: np.ndarray, y: np.ndarray, k: int, l2: float, extra: np.ndarray | None = None):
    """L2 multinomial logistic regression with LBFGS on standardised features (scaler from `extra`)."""
    ref = f if extra is None else extra
    mu, sd = ref.mean(0), ref.std(0) + 1e-6
    X = torch.from_numpy((f - mu) / sd)
    Y = torch.from_numpy(y)
    W = torch.zeros(X.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=200, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(X @ W + b, Y) + l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    W, b = W.detach(), b.detach()
    return lambda g: (torch.from_numpy((g - mu) / sd) @ W + b)


# ----------------------------------------------------------------------------------------------------
# student  [edgekit-ready]
# ----------------------------------------------------------------------------------------------------
class Student(nn.Module):
    def __init__(self, cin: int, k: int, widths=(8, 16, 32), kernels=(7, 5, 5), stride0: int = 2):
        super().__init__()
        layers, c = [], cin
        for i, (w, ks) in enumerate(zip(widths, kernels)):
            layers += [
                nn.Conv1d(c, w, ks, stride=stride0 if i == 0 else 2, padding=ks // 2),
                nn.BatchNorm1d(w),
                nn.ReLU(),
            ]
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c, k)

    def forward(self, x):
        h = self.body(x)
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], 1))


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def kd_loss(s_logits, t_probs, y, has_label, T: float, alpha: float):  # [edgekit-ready]
    """(1-a) T^2 KL(softmax(t/T) || softmax(s/T)) on every row + a CE on labelled rows.
    Teacher probs are turned back into logits by log (black-box friendly)."""
    t_logits = torch.log(t_probs.clamp_min(1e-6))
    soft = F.kl_div(F.log_softmax(s_logits / T, -1), F.log_softmax(t_logits / T, -1),
                    reduction="batchmean", log_target=True) * T * T
    if has_label.any():
        hard = -(y[has_label] * F.log_softmax(s_logits[has_label], -1)).sum(-1).mean()
    else:
        hard = s_logits.sum() * 0
    return (1 - alpha) * soft + alpha * hard


def train_student(views, soft, hard, has_label, k, steps, seed, T, alpha, kd: bool, batch=64, lr=3e-3, widths=(8, 16, 32), stride0=2):
    """views [M, C, L]; soft [M, K] teacher probs; hard [M, K] (mixed) one-hot; has_label [M]."""
    torch.manual_seed(seed)
    m = Student(views.shape[1], k, widths=widths, stride0=stride0)
    opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    X, S, Y, H = map(torch.from_numpy, (views, soft, hard, has_label))
    g = torch.Generator().manual_seed(seed)
    m.train()
    for _ in range(steps):
        idx = torch.randint(0, len(X), (min(batch, len(X)),), generator=g)
        out = m(X[idx])
        if kd:
            loss = kd_loss(out, S[idx], Y[idx], H[idx], T, alpha)
        else:
            loss = -(Y[idx] * F.log_softmax(out, -1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    m.eval()
    return m


@torch.no_grad()
def predict(m, x):
    return torch.softmax(m(torch.from_numpy(x)), -1).numpy()


# ----------------------------------------------------------------------------------------------------
# metrics  [edgekit-ready]
# ----------------------------------------------------------------------------------------------------
def confusion(y, p, k):
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, p), 1)
    return cm


def macro_f1(y, p, k):
    cm = confusion(y, p, k)
    tp = np.diag(cm).astype(float)
    prec = tp / np.maximum(cm.sum(0), 1)
    rec = tp / np.maximum(cm.sum(1), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    present = cm.sum(1) > 0
    return float(f1[present].mean())


def recall_per_class(y, p, k):
    cm = confusion(y, p, k)
    return np.diag(cm) / np.maximum(cm.sum(1), 1)


def paired_bootstrap(y, preds_a, preds_b, k, n_boot=1000, seed=0):
    """preds_*: [S, N] predictions of S seeds on the same N test series. Resamples seeds and series
    jointly; the gain per replicate = mean over resampled seeds of macroF1(a) - macroF1(b) on the
    resampled series (pairs stay together). Returns (mean gain, lo, hi)."""
    rng = np.random.default_rng(seed)
    S, N = preds_a.shape
    point = np.mean([macro_f1(y, preds_a[s], k) - macro_f1(y, preds_b[s], k) for s in range(S)])
    gains = []
    for _ in range(n_boot):
        ss = rng.integers(0, S, S)
        ii = rng.integers(0, N, N)
        gains.append(np.mean([macro_f1(y[ii], preds_a[s][ii], k) - macro_f1(y[ii], preds_b[s][ii], k) for s in ss]))
    lo, hi = np.percentile(gains, [2.5, 97.5])
    return float(point), float(lo), float(hi)


# ----------------------------------------------------------------------------------------------------
# one seed  [research]
# ----------------------------------------------------------------------------------------------------
def run_seed(data, k, frac, seed, cfg, log):
    (xtr, ltr, ytr), (xte, lte, yte) = data
    rng = np.random.default_rng(seed)
    val_idx, tr_idx = stratified_split(ytr, VAL_FRAC, rng)
    n_lab = int(round(frac * len(ytr)))
    lab = label_mask(ytr[tr_idx], n_lab, k, rng)
    xt, yt = xtr[tr_idx], ytr[tr_idx]
    xv, yv = xtr[val_idx], ytr[val_idx]
    t0 = time.time()

    # teacher: random-conv features, biases fitted on all train series (unlabelled ones included)
    I = lambda x: to_input(x, cfg.input)
    teacher = RocketTeacher(xt.shape[-1], n_bias=cfg.n_bias, seed=seed).fit_biases(I(xt))
    ft = teacher.features(I(xt))
    head = fit_softmax(ft[lab], yt[lab], k, cfg.l2, extra=ft)
    tprob = lambda x: torch.softmax(head(teacher.features(I(x))), -1).numpy()
    # optional self-training: add confident pseudo-labels of unlabelled series, refit once
    if cfg.self_train and (~lab).any():
        p = torch.softmax(head(ft[~lab]), -1).numpy()
        conf = p.max(1) >= cfg.self_train
        ylab = np.concatenate([yt[lab], p.argmax(1)[conf]])
        head = fit_softmax(np.concatenate([ft[lab], ft[~lab][conf]]), ylab, k, cfg.l2, extra=ft)
    t_te = tprob(xte)
    t_va = tprob(xv)
    t_fit = time.time() - t0

    # transfer set: R augmented views of every train series; teacher queried on the same views
    views, parts, lams, src = [xt], [np.full(len(xt), -1)], [np.ones(len(xt), np.float32)], [np.arange(len(xt))]
    for r in range(cfg.views):
        v, pj, lm = augment(xt, rng, p_mix=cfg.p_mix)
        views.append(v), parts.append(pj), lams.append(lm), src.append(np.arange(len(xt)))
    V = np.concatenate(views)
    P = np.concatenate(parts)
    Lm = np.concatenate(lams)
    Src = np.concatenate(src)
    soft = tprob(V).astype(np.float32)
    onehot = np.eye(k, dtype=np.float32)[yt]
    hard = Lm[:, None] * onehot[Src] + (1 - Lm[:, None]) * np.where(P[:, None] >= 0, onehot[np.maximum(P, 0)], 0)
    hard = hard.astype(np.float32)
    # a view's hard target exists when its source (and partner, if mixed) are labelled
    has = lab[Src] & np.where(P >= 0, lab[np.maximum(P, 0)], True)
    t_aug = time.time() - t0 - t_fit

    # baseline: labelled series only, augmented views mixed only among labelled series
    bviews, bhard = [xt[lab]], [onehot[lab]]
    lab_idx = np.flatnonzero(lab)
    for r in range(cfg.views):
        v, pj, lm = augment(xt[lab], rng, p_mix=cfg.p_mix)
        oh = onehot[lab]
        bviews.append(v)
        bhard.append(lm[:, None] * oh + (1 - lm[:, None]) * np.where(pj[:, None] >= 0, oh[np.maximum(pj, 0)], 0))
    BV = np.concatenate(bviews)
    BH = np.concatenate(bhard).astype(np.float32)
    del lab_idx

    s_kd = train_student(I(V), soft, hard, has, k, cfg.steps, seed, cfg.T, cfg.alpha, kd=True, widths=cfg.widths, stride0=cfg.stride0)
    s_no = train_student(I(BV), BH, BH, np.ones(len(BV), bool), k, cfg.steps, seed, cfg.T, cfg.alpha, kd=False, widths=cfg.widths, stride0=cfg.stride0)
    t_train = time.time() - t0 - t_fit - t_aug

    out = {
        "teacher": t_te.argmax(1),
        "kd": predict(s_kd, I(xte)).argmax(1),
        "nokd": predict(s_no, I(xte)).argmax(1),
        "val": {
            "teacher": macro_f1(yv, t_va.argmax(1), k),
            "kd": macro_f1(yv, predict(s_kd, I(xv)).argmax(1), k),
            "nokd": macro_f1(yv, predict(s_no, I(xv)).argmax(1), k),
        },
        "n_lab": int(lab.sum()),
        "n_train": len(xt),
        "n_transfer": len(V),
        "t_params": teacher.params(k),
        "s_params": n_params(s_kd),
    }
    f = {n: macro_f1(yte, out[n], k) for n in ("teacher", "kd", "nokd")}
    log(f"seed {seed}: labelled {out['n_lab']}/{len(xt)} train series (+{len(xv)} val), transfer views "
        f"{len(V)} | test macro-F1 teacher {f['teacher']:.3f} KD {f['kd']:.3f} noKD {f['nokd']:.3f} | "
        f"val T {out['val']['teacher']:.3f} KD {out['val']['kd']:.3f} noKD {out['val']['nokd']:.3f} | "
        f"{t_fit:.0f}s teacher, {t_aug:.0f}s views, {t_train:.0f}s students")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=["plaid", "acsf1"], default="plaid")
    ap.add_argument("--label-fraction", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 seeds, fewer views and steps (smoke run)")
    ap.add_argument("--length", type=int, default=None, help="resampled series length")
    ap.add_argument("--views", type=int, default=10, help="augmented views per train series")
    ap.add_argument("--p-mix", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--T", type=float, default=2.0)
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--self-train", type=float, default=0.0, help="pseudo-label confidence (0 = off)")
    ap.add_argument("--widths", type=lambda v: tuple(int(a) for a in v.split(",")), default=(12, 24, 32))
    ap.add_argument("--stride0", type=int, default=2, help="stride of the student's first conv")
    ap.add_argument("--n-bias", type=int, default=12, help="teacher PPV thresholds per kernel and dilation")
    ap.add_argument("--input", choices=["raw", "z", "both"], default="both")
    cfg = ap.parse_args(argv)
    if cfg.quick:
        cfg.seeds, cfg.views, cfg.steps = 2, 4, 600
    length = cfg.length or {"plaid": 256, "acsf1": 512}[cfg.dataset]
    t_start = time.time()
    log = lambda s: print(s, flush=True)
    log(f"config: {vars(cfg)} length={length}")
    (xtr, ltr, ytr), (xte, lte, yte), classes, published = load(cfg.dataset, length)
    sc = float(xtr.std())  # one global scale from TRAIN; per-series shape channel comes from to_input
    xtr, xte = xtr / sc, xte / sc
    k = len(classes)
    runs = [run_seed(((xtr, ltr, ytr), (xte, lte, yte)), k, cfg.label_fraction, s, cfg, log) for s in range(cfg.seeds)]

    A = {n: np.stack([r[n] for r in runs]) for n in ("teacher", "kd", "nokd")}
    F1 = {n: np.array([macro_f1(yte, a, k) for a in A[n]]) for n in A}
    acc = {n: np.array([(a == yte).mean() for a in A[n]]) for n in A}
    gain, lo, hi = paired_bootstrap(yte, A["kd"], A["nokd"], k)
    ret = F1["kd"] / F1["teacher"]
    ratio = runs[0]["t_params"] / runs[0]["s_params"]
    log("")
    log(f"== {cfg.dataset.upper()}  label fraction {cfg.label_fraction:g} ({runs[0]['n_lab']} labelled of "
        f"{len(ytr)} TRAIN series; {runs[0]['n_transfer']} transfer views)  seeds {cfg.seeds}  test series {len(yte)}")
    log(f"published accuracy (aeon, 100% labels): {published}")
    log(f"{'model':<16}{'params':>9}{'macro-F1 mean±sd':>20}{'accuracy':>16}")
    for n, name, p in (("teacher", "teacher (rocket)", runs[0]["t_params"]), ("kd", "student KD", runs[0]["s_params"]),
                       ("nokd", "student no-KD", runs[0]["s_params"])):
        log(f"{name:<16}{p:>9}{F1[n].mean():>12.3f} ± {F1[n].std(ddof=1) if len(F1[n]) > 1 else 0:.3f}"
            f"{acc[n].mean():>10.3f} ± {acc[n].std(ddof=1) if len(acc[n]) > 1 else 0:.3f}")
    log(f"KD gain (macro-F1, KD - noKD): {gain:+.3f}  paired bootstrap 95% CI [{lo:+.3f}, {hi:+.3f}]  "
        f"(seeds x test series resampled jointly; per-seed gains {np.round(F1['kd'] - F1['nokd'], 3).tolist()})")
    log(f"retention (student KD / teacher macro-F1): {ret.mean():.3f} ± {ret.std(ddof=1) if len(ret) > 1 else 0:.3f}"
        f"  (ratio of means {F1['kd'].mean() / F1['teacher'].mean():.3f})   params ratio {ratio:.1f}x")
    counts = np.bincount(ytr, minlength=k)
    rare = np.argsort(counts)[:3]
    for c in rare:
        rec = {n: np.mean([recall_per_class(yte, a, k)[c] for a in A[n]]) for n in A}
        log(f"rare class {classes[c]!r} (train {counts[c]}, test {(yte == c).sum()}): recall teacher "
            f"{rec['teacher']:.3f} KD {rec['kd']:.3f} noKD {rec['nokd']:.3f}")
    vals = {n: np.mean([r["val"][n] for r in runs]) for n in ("teacher", "kd", "nokd")}
    log(f"validation macro-F1 (mean over seeds): teacher {vals['teacher']:.3f} KD {vals['kd']:.3f} noKD {vals['nokd']:.3f}")
    log(f"wall time {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
