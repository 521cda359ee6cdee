"""Text distillation on the real chatterbot corpus: MiniLM teacher vs distilled BERT student vs the same
student without KD (plus the student with the other embedding initialisation).

    .venv/bin/python benchmarks/text_distill_table.py [--out runs/bench-text] [--seed 0] [--max-length 32]

One full run (all statements, the CLI's defaults, ~6-10 minutes on 2 CPU cores). Prints the table and
writes the "text-distill" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.distill.text import TextDistillConfig, distill_text


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench-text")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument(
        "--no-compare-init", action="store_true", help="skip the extra student with the other embedding init"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t0 = time.time()
    r = distill_text(
        TextDistillConfig(
            out=args.out, seed=args.seed, max_length=args.max_length, compare_init=not args.no_compare_init
        )
    )
    wall = time.time() - t0
    print(f"\n{r['table']}\n\nwall {wall:.0f} s; stages {r['timings']}")
    st, sv, c = r["statements"], r["student_vocab"], r["corpus"]
    n = {s: sum(v.values()) for s, v in st.items()}
    merged = ", ".join(r["classes_merged"]["other"]) if "other" in r["classes_merged"] else "-"
    esc = r["escalation"]["test"]
    body = f"""\
Real data: chatterbot-corpus english, {c["statements_in_files"]} statements in the files, {c["distinct_statements"]} distinct
after removing {c["duplicates_removed"]} duplicates (tech_support.yml is 10 conversations repeated 105 times) and
{c["ambiguous_statements_dropped"]} statements filed under two categories; {c["groups"]} conversation groups split
{n["train"]}/{n["val"]}/{n["test"]} (train/val/test statements), no group on two sides. Classes: {", ".join(r["labels"])}
("other" = {merged}). Teacher: all-MiniLM-L6-v2 + classification head, fine-tuned (word embeddings frozen).
Student: BERT {r["student_config"]["layers"]} layers, hidden {r["student_config"]["hidden"]}, {r["student_config"]["heads"]} heads, intermediate
{r["student_config"]["intermediate"]}, vocabulary shrunk to {sv["size"]} of {sv["teacher_size"]} WordPiece pieces (test [UNK] rate {sv["test_unk_rate"]:.3f}),
embeddings initialised from a projection of the teacher's ({r["kd"]["student_init"]}); Hinton KD T={r["kd"]["temperature"]}, alpha={r["kd"]["alpha"]}
on a transfer set of {r["transfer_set"]["statements"]} statements (training set + {r["transfer_set"]["augment_copies"]} copies with words deleted/masked;
the no-KD student trains on the same inputs with hard labels only). max_length {r["max_length"]} tokens; torch ms is one
statement at max_length tokens, eager PyTorch, {torch.get_num_threads()} threads. Seed {r["seed"]}; wall {wall:.0f} s
(stages: {r["timings"]}).

{r["table"]}

Escalation on test: {esc["escalated_fraction"]:.1%} escalated; student accuracy on the kept statements
{_f(esc["student_accuracy_kept"])}, teacher accuracy on the escalated ones {_f(esc["teacher_accuracy_on_escalated"])}.
"""
    write_section(
        "text-distill", "Text distillation (chatterbot): MiniLM teacher vs BERT student vs no-KD", body
    )


if __name__ == "__main__":
    main()
