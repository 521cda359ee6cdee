"""What cutting long texts before tokenizing saves (edgekit.runtime.text): TextEngine.tokenize with the cut
against the same engine with the cut off, interleaved text by text, on real held-out texts.

    .venv/bin/python benchmarks/text_tokenize_cut.py --bundle BUNDLE_DIR --texts RUN/text_eval.jsonl

Both engines load the same bundle; the second has `cut_chars = None` (whole texts tokenized, as before the
cut existed). Every text is tokenized by both in a random order per text, `--repeats` times; the ids are
checked equal first (the cut is exact or this script stops). Prints tokenize p50/p99/mean in microseconds
over all texts and over the texts longer than the cut, and tokenize+infer at batch 1 for both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgekit.bench.text import load_texts
from edgekit.profiles import load_profile
from edgekit.runtime.text import TextEngine

# calls per model at batch 1 of benchmarks/text_distill_table.py before 2026-12-08, when it timed the
# held-out file's head in file order: this script prints what that head looks like beside the whole file
OLD_HEAD = 300


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--texts", required=True, help=".jsonl with a text field per line, or plain lines")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", default="x86-gateway")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    cut = TextEngine(args.bundle, profile)
    whole = TextEngine(args.bundle, profile)
    whole.cut_chars = None
    texts, source = load_texts(cut, args.texts)
    texts = [str(t) for t in texts]
    if cut.cut_chars is None:
        raise SystemExit(
            f"{args.bundle}: this tokenizer is never cut (prefix_cut_chars is None): nothing to measure"
        )
    for t in texts:  # exact, or nothing here means anything
        a, b = cut.tokenize([t]), whole.tokenize([t])
        if any(not np.array_equal(a[k], b[k]) for k in a):
            raise SystemExit(f"cut and whole tokenization differ on {t[:60]!r}")
    rng = np.random.default_rng(0)
    engines = {"cut": cut, "whole": whole}
    tok = {n: [] for n in engines}
    call = {n: [] for n in engines}
    for _ in range(args.repeats):
        for i in rng.permutation(len(texts)):
            for name in rng.permutation(list(engines)):
                e = engines[str(name)]
                t0 = time.perf_counter_ns()
                feeds = e.tokenize([texts[i]])
                t1 = time.perf_counter_ns()
                e.infer(feeds)
                t2 = time.perf_counter_ns()
                tok[str(name)].append(((t1 - t0) / 1e3, len(texts[i])))
                call[str(name)].append((t2 - t0) / 1e3)
    lengths = np.array([len(t) for t in texts])
    print(
        f"bundle {args.bundle}; texts {source}: {len(texts)}, median {np.median(lengths):.0f} chars, "
        f"{(lengths > cut.cut_chars).sum()} longer than the cut ({cut.cut_chars} chars); "
        f"max_length {cut.max_length}; {args.repeats} repeats, interleaved; ids identical on every text"
    )
    print(f"the first {OLD_HEAD} texts in file order: median {np.median(lengths[:OLD_HEAD]):.0f} chars")
    print(
        "| engine | tokenize p50 / p99 / mean us (all) | tokenize p50 / mean us (longer than the cut) | tok+infer p50 / p99 us |"
    )
    print("|---|---|---|---|")
    for name in engines:
        us = np.array([u for u, _ in tok[name]])
        long = np.array([u for u, n in tok[name] if n > cut.cut_chars])
        c = np.array(call[name])
        print(
            f"| {name} | {np.percentile(us, 50):.1f} / {np.percentile(us, 99):.1f} / {us.mean():.1f} "
            + (f"| {np.percentile(long, 50):.1f} / {long.mean():.1f} " if len(long) else "| - ")
            + f"| {np.percentile(c, 50):.1f} / {np.percentile(c, 99):.1f} |"
        )


if __name__ == "__main__":
    main()
