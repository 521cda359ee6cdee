"""Window-1 student as a plain MLP -> ONNX: count nodes by op type (structural side of the latency target).
Compares with a Conv1d-over-a-length-1-window model (what a window-1 'TCN' looks like). [edgekit-ready as a test]"""
import collections, io, sys, time
import numpy as np, torch, torch.nn as nn
torch.set_num_threads(1)
import onnx, onnxruntime as ort

class MLP(nn.Module):  # window-1 student: [B, C] -> [B, K]
    def __init__(self, c=9, h=32, k=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, k))
    def forward(self, x):
        return self.net(x)

class Conv1x(nn.Module):  # window-1 conv net with padding, [B, C, 1] -> [B, K]
    def __init__(self, c=9, h=32, k=2):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(c, h, 3, padding=1), nn.ReLU(), nn.Conv1d(h, h, 3, padding=2, dilation=2), nn.ReLU())
        self.head = nn.Linear(h, k)
    def forward(self, x):
        return self.head(self.net(x)[:, :, -1])

def export(m, x, dynamic):
    f = io.BytesIO()
    kw = dict(input_names=["x"], output_names=["y"], opset_version=17)
    if dynamic:
        kw["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    try:
        torch.onnx.export(m.eval(), (x,), f, dynamo=False, **kw)
    except TypeError:
        torch.onnx.export(m.eval(), (x,), f, **kw)
    return onnx.load_from_string(f.getvalue())

class Ident(nn.Module):  # the runtime's per-call floor for the same input
    def forward(self, x):
        return x

SHAPE_OPS = {"Shape", "ConstantOfShape", "Gather", "Slice", "Concat", "Reshape", "Unsqueeze", "Squeeze", "Pad", "Expand"}
for name, m, x in (("Identity [B,9]", Ident(), torch.randn(1, 9)), ("MLP [B,9]", MLP(), torch.randn(1, 9)), ("Conv1d [B,9,1]", Conv1x(), torch.randn(1, 9, 1))):
    for dyn in (False, True):
        g = export(m, x, dyn)
        ops = collections.Counter(n.op_type for n in g.graph.node)
        sess = ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"])
        xn = x.numpy()
        for _ in range(200): sess.run(None, {"x": xn})
        t = []
        for _ in range(2000):
            t0 = time.perf_counter(); sess.run(None, {"x": xn}); t.append(time.perf_counter() - t0)
        params = sum(p.numel() for p in m.parameters())
        print(f"{name:<16} params {params:>5} dynamic_batch={dyn!s:<5} nodes {sum(ops.values()):>2} "
              f"shape-ops {sum(v for k, v in ops.items() if k in SHAPE_OPS):>2} {dict(ops)}  ort p50 {np.median(t)*1e6:.1f} us (shared noisy CPU)")
