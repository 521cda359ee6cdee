"""Run a bundle's golden pairs with whatever onnxruntime this interpreter has; print one JSON line per bundle.

Standalone on purpose: only numpy, onnxruntime and the standard library, so it runs under an emulated
aarch64 CPython with just those wheels unpacked (scripts/arm_check.sh). It mirrors what the device's
self-test does. Sensor bundles: normalize the RAW golden windows with the manifest's mean/std, cast to the
model's input dtype, run, and compare with the manifest's tolerance. Text bundles (edgekit.runtime.text
needs `tokenizers` too): the golden token ids through the model; then, when the golden file holds its
texts, tokenizer.json must give the exporter's ids and the texts, padded to the batch's longest as the
daemon pads them, must reproduce the golden outputs.

Exit status: 0 all match, 1 a mismatch (or a bundle that cannot be loaded), 3 a bundle kind it cannot check.
Timings are deliberately not reported: under emulation they mean nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_bundle(bundle: Path) -> dict:
    """Golden check of one bundle; returns a JSON-able result with `status` PASS, FAIL, ERROR or SKIP."""
    res: dict = {"bundle": str(bundle), "status": "ERROR"}
    try:
        m = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        res["reason"] = f"cannot read manifest.json ({exc})"
        return res
    res.update(
        model_id=m.get("model_id"),
        kind=m.get("kind"),
        profile=m.get("profile"),
        quantization=m.get("quantization", {}),
    )
    golden = m.get("golden", {})
    model_file, golden_file = m.get("model_file", "model.onnx"), golden.get("file", "golden.npz")
    # The check must run the exact bytes the device will run, so hashes are checked first.
    for name in (model_file, golden_file):
        path = bundle / name
        if not path.is_file():
            res["reason"] = f"{name} is missing"
            return res
        want = m.get("files", {}).get(name)
        if want and sha256(path) != want:
            res["reason"] = f"{name} does not match its sha256 in the manifest"
            return res
    if m.get("kind") not in ("sensor", "text"):
        res.update(status="SKIP", reason=f"{m.get('kind')} bundles are not checked here")
        return res
    with np.load(bundle / golden_file) as g:
        golden_arrays = {k: g[k] for k in g.files}
    expected = golden_arrays["outputs"]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        sess = ort.InferenceSession(
            str(bundle / model_file), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        out_name = m.get("output", {}).get("name") or sess.get_outputs()[0].name
        if m["kind"] == "text":
            names = [i.name for i in sess.get_inputs()]
            feeds = {n: golden_arrays[n].astype(np.int64) for n in names}
        else:
            feeds = {sess.get_inputs()[0].name: sensor_inputs(m, golden_arrays["inputs"])}
        got = np.asarray(sess.run([out_name], feeds)[0], dtype=np.float32)
    except Exception as exc:  # onnxruntime raises its own types; any of them is a failed check
        res["reason"] = f"onnxruntime failed: {exc}"
        return res
    atol, rtol = float(golden.get("atol", 1e-4)), float(golden.get("rtol", 1e-3))
    res.update(n=len(expected), atol=atol, rtol=rtol)
    if m["kind"] == "text" and "texts" in golden_arrays:
        why = check_tokenizer(bundle, m, sess, out_name, golden_arrays, atol, rtol)
        res["tokenizer"] = why or "PASS"
        if why:
            res.update(status="FAIL", reason=why)
            return res
    if got.shape != expected.shape:
        res.update(status="FAIL", reason=f"output shape {list(got.shape)} != golden {list(expected.shape)}")
        return res
    diff = np.abs(got - expected.astype(np.float32))
    ok = bool(np.allclose(got, expected, atol=atol, rtol=rtol))
    res.update(
        status="PASS" if ok else "FAIL",
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        max_abs_golden=float(np.abs(expected).max()) if expected.size else 0.0,
    )
    if not ok:
        res["reason"] = (
            f"golden outputs differ by up to {res['max_abs_diff']:.3g} (atol {atol:g}, rtol {rtol:g})"
        )
    return res


def sensor_inputs(m: dict, raw: np.ndarray) -> np.ndarray:
    """RAW golden windows normalized and cast as the device Engine does."""
    inputs = raw.astype(np.float32)
    norm = m.get("normalization")
    if norm:
        mean = np.asarray(norm["mean"], np.float32).reshape(1, 1, -1)
        std = np.asarray(norm["std"], np.float32).reshape(1, 1, -1)
        inputs = (inputs - mean) * (1.0 / std)
    return inputs.astype(DTYPES[m.get("input", {}).get("dtype", "float32")])


def check_tokenizer(
    bundle: Path, m: dict, sess: object, out_name: str, g: dict, atol: float, rtol: float
) -> str | None:
    """The golden texts through tokenizer.json (truncated at max_length, padded to the longest, as
    edgekit.runtime.text does): None when ids and outputs match the exporter's, else why not."""
    from tokenizers import Tokenizer  # only text bundles need it

    text = m.get("text") or {}
    tok = Tokenizer.from_file(str(bundle / text.get("tokenizer", "tokenizer.json")))
    pad = tok.padding or {}
    pad_id = pad.get("pad_id", tok.token_to_id("[PAD]") or 0)
    tok.enable_truncation(int(text.get("max_length", 64)))
    tok.enable_padding(pad_id=pad_id, pad_token=pad.get("pad_token", "[PAD]"))
    texts = [str(t) for t in g["texts"]]
    encs = tok.encode_batch(texts)
    for i, e in enumerate(encs):
        n = int(g["attention_mask"][i].sum())
        if e.ids[: sum(e.attention_mask)] != g["input_ids"][i, :n].tolist():
            return f"tokenizer.json gives other token ids than the exporter for golden text {i}"
    cols = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
    names = [i.name for i in sess.get_inputs()]  # type: ignore[attr-defined]
    feeds = {n: np.asarray([getattr(e, cols[n]) for e in encs], np.int64) for n in names}
    got = np.asarray(sess.run([out_name], feeds)[0], dtype=np.float32)  # type: ignore[attr-defined]
    if not np.allclose(got, g["outputs"], atol=atol, rtol=rtol):
        diff = float(np.abs(got - g["outputs"]).max())
        return f"texts padded to the batch's longest differ from the golden outputs by {diff:.3g}"
    return None


def describe(res: dict) -> str:
    q = res.get("quantization") or {}
    settings = q.get("mode", "?") + (f" weights={q['weight_type']}" if q.get("weight_type") else "")
    if "max_abs_diff" in res:
        detail = f"max |diff| {res['max_abs_diff']:.3g} (atol {res['atol']:g}, rtol {res['rtol']:g})"
        if "tokenizer" in res:
            detail += f"; tokenizer + padding to the longest: {res['tokenizer']}"
    else:
        detail = res.get("reason", "")
    line = f"  {res['status']:<5} {res['bundle']}  [{settings}]  {detail}"
    if res["status"] == "FAIL" and "max_abs_diff" in res:
        line += f"\n        {res['reason']}"
    return line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="also append one JSON line per bundle to this file")
    args = ap.parse_args(argv)
    env = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
    }
    rc = 0
    for b in args.bundles:
        res = {**check_bundle(b), **env}
        print(describe(res), flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(res, sort_keys=True) + "\n")
        if res["status"] in ("FAIL", "ERROR"):
            rc = 1
        elif res["status"] == "SKIP" and rc == 0:
            rc = 3
    return rc


if __name__ == "__main__":
    sys.exit(main())
