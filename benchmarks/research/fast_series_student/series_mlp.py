"""Issue 11 research: a series student near onnxruntime's per-call floor at batch 1.

The cnn-small student (three strided convolutions) runs at 4.5-5.9x the floor on PLAID/ACSF1: about 16
kernels and 240k multiply-adds per window. This candidate pools the window first (AveragePool), takes the
per-window shape channel with one LayerNormalization, then a one-hidden-layer MLP: about 7 kernels and
5k multiply-adds. This script (1) registers it as `mlp-series`, (2) runs the label-scarce recipe
(`edgekit_recipe.py`) with it as the student, (3) optionally times both students' exported graphs against
an Identity floor, interleaved.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 .venv/bin/python \
        benchmarks/research/fast_series_student/series_mlp.py --dataset plaid --label-fraction 0.1 --seeds 5 \
        --pool 4 --hidden 32 --out /tmp/series-mlp
    ... --latency-only   (export untrained students and time them; no training)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.models.registry import MODELS, ModelSpec

HERE = Path(__file__).resolve().parent


@MODELS.register("mlp-series")
class SeriesMLP(nn.Module):
    """[B, W, C] raw window -> mean-pool W by `pool` -> [amplitude, per-window z-norm shape] -> MLP."""

    def __init__(
        self,
        channels: int,
        window: int,
        out_dim: int,
        hidden: tuple[int, ...] | list[int] = (32,),
        pool: int = 4,
        shape_channel: bool = True,
    ) -> None:
        super().__init__()
        self.pool, self.shape_channel = pool, shape_channel
        steps = window // pool
        cin = channels * (2 if shape_channel else 1) * steps
        dims = [cin, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], out_dim))
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)  # [B, C, W]
        if self.pool > 1:
            h = F.avg_pool1d(h, self.pool)
        if self.shape_channel:
            h = torch.cat([h, F.layer_norm(h, (self.steps,), eps=1e-6)], dim=1)
        return self.net(torch.flatten(h, 1))


@MODELS.register("cnn-pooled")
class PooledCNN(nn.Module):
    """[B, W, C] raw window -> mean-pool W by `pool` -> [amplitude, LayerNorm shape] -> Conv1d+ReLU layers
    (stride 1 after the first) -> global max (and mean) pooling -> Linear: shift-invariant like cnn-small,
    on a window `pool` times shorter and with fewer kernels."""

    def __init__(
        self,
        channels: int,
        window: int,
        out_dim: int,
        widths: tuple[int, ...] | list[int] = (24,),
        kernels: tuple[int, ...] | list[int] = (9,),
        pool: int = 4,
        stride0: int = 1,
        mean_pool: bool = True,
    ) -> None:
        super().__init__()
        self.pool, self.steps, self.mean_pool = pool, window // pool, mean_pool
        layers: list[nn.Module] = []
        cin = 2 * channels
        for i, (w, k) in enumerate(zip(widths, kernels)):
            layers += [nn.Conv1d(cin, w, k, stride=stride0 if i == 0 else 1), nn.ReLU()]
            cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin * (2 if mean_pool else 1), out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        if self.pool > 1:
            h = F.avg_pool1d(h, self.pool)
        h = torch.cat([h, F.layer_norm(h, (self.steps,), eps=1e-6)], dim=1)
        h = self.body(h)
        feats = [h.amax(dim=-1), h.mean(dim=-1)] if self.mean_pool else [h.amax(dim=-1)]
        return self.head(torch.cat(feats, dim=1) if len(feats) > 1 else feats[0])


STUDENT = {"kind": "mlp-series", "kwargs": {}}


def patch_student(pool: int, hidden: list[int]) -> None:
    import edgekit.distill.supervised as sup

    original = sup.student_spec

    def student_spec(channels: int, window: int, h: int, out_dim: int, shape_channel: bool = False) -> ModelSpec:
        if window == 1:
            return original(channels, window, h, out_dim, shape_channel)
        if STUDENT["kind"] == "cnn-pooled":
            return ModelSpec(
                "cnn-pooled",
                {"channels": channels, "window": window, "out_dim": out_dim, "pool": pool, **STUDENT["kwargs"]},
            )
        return ModelSpec(
            "mlp-series",
            {"channels": channels, "window": window, "out_dim": out_dim, "hidden": hidden, "pool": pool,
             "shape_channel": shape_channel},
        )

    sup.student_spec = student_spec


def latency(window: int, channels: int, k: int, pool: int, hidden: list[int], runs: int = 3000) -> None:
    import io

    import onnx
    import onnxruntime as ort

    from edgekit.models.sensor import SmallCNN

    class Ident(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    models = {
        "identity": Ident(),
        "cnn-small": SmallCNN(channels, k, shape_channel=True).eval(),
        "mlp-series": SeriesMLP(channels, window, k, hidden, pool).eval(),
        "cnn-pooled": PooledCNN(channels, window, k, pool=pool, **STUDENT["kwargs"]).eval(),
    }
    x = torch.randn(1, window, channels)
    sessions = {}
    for name, m in models.items():
        f = io.BytesIO()
        torch.onnx.export(m, (x,), f, input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
        g = onnx.load_from_string(f.getvalue())
        ops = sorted(n.op_type for n in g.graph.node)
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sessions[name] = ort.InferenceSession(f.getvalue(), so, providers=["CPUExecutionProvider"])
        params = sum(p.numel() for p in m.parameters())
        print(f"{name}: {len(ops)} nodes {ops}, {params} params")
    xn = x.numpy()
    times = {n: [] for n in sessions}
    for _ in range(runs):  # interleaved
        for n, s in sessions.items():
            t = time.perf_counter_ns()
            s.run(None, {"x": xn})
            times[n].append(time.perf_counter_ns() - t)
    floor = np.median(times["identity"]) / 1000
    for n, t in times.items():
        p50 = np.median(t) / 1000
        print(f"  {n:<10} p50 {p50:6.2f} us  {p50 / floor:4.2f}x the floor")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--hidden", type=int, nargs="+", default=[32])
    ap.add_argument("--latency-only", action="store_true")
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--student", choices=["mlp-series", "cnn-pooled"], default="mlp-series")
    ap.add_argument("--widths", type=int, nargs="+", default=[24])
    ap.add_argument("--kernels", type=int, nargs="+", default=[9])
    ap.add_argument("--stride0", type=int, default=1)
    ap.add_argument("--no-mean-pool", action="store_true")
    args, rest = ap.parse_known_args()
    STUDENT["kind"] = args.student
    STUDENT["kwargs"] = {"widths": args.widths, "kernels": args.kernels, "stride0": args.stride0,
                         "mean_pool": not args.no_mean_pool}
    torch.set_num_threads(1)
    if args.latency_only:
        latency(args.window, 1, 11, args.pool, args.hidden)
        return
    patch_student(args.pool, args.hidden)
    sys.path.insert(0, str(HERE.parent / "kd_label_scarce"))
    import edgekit_recipe

    sys.argv = [sys.argv[0], *rest]
    edgekit_recipe.main()


if __name__ == "__main__":
    main()
