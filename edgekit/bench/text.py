"""What `edgekit bench` needs for a text bundle: the TextEngine as a Variant (preprocess = tokenize, pad to
the batch's longest; infer = session.run; postprocess = softmax) and real held-out texts to feed it.

Texts travel as 1-D numpy string arrays, so the model-only bench cycles and batches them exactly as it
does sensor windows (`latency.make_batches`), and the e2e bench replays them as rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgekit.bundle.manifest import Manifest
from edgekit.errors import DataError
from edgekit.profiles import TargetProfile
from edgekit.runtime.text import TextEngine

STAGES = "preprocess (tokenize with tokenizer.json, pad to the batch's longest) | infer (session.run) | postprocess (softmax)"


def text_variant_fields(bundle_dir: Path, profile: TargetProfile | None, manifest: Manifest) -> dict:
    """The Variant fields of a text bundle (bench.variants builds the Variant)."""
    engine = TextEngine(bundle_dir, profile, manifest)
    return {
        "preprocess": lambda texts: engine.tokenize(texts.tolist()),
        "infer": engine.infer,
        "postprocess": engine.postprocess,
        "window": 0,  # text: no window; variants compare only with text bundles (window 0, channels 0)
        "channels": 0,
        "providers": engine.providers,
        "engine": engine,
        "info": {"input": "text", "max_length": engine.max_length, "labels": engine.labels},
    }


def load_texts(engine: TextEngine, data: str | Path | None = None) -> tuple[np.ndarray, str]:
    """Held-out texts: a --data file (.jsonl with a "text" field per line, or plain text, one per line),
    or the golden file's texts."""
    if data is None:
        texts = engine.golden_texts()
        source = f"{engine.bundle_dir / engine.manifest.golden.file}:texts"
    else:
        path = Path(data)
        try:
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read texts ({exc})") from None
        if path.suffix == ".jsonl":
            try:
                texts = [str(json.loads(ln)["text"]) for ln in lines]
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{path}: every line must be a JSON object with a text field ({exc})"
                ) from None
        else:
            texts = lines
        source = str(path)
    if not texts:
        raise DataError(f"{source}: no texts")
    return np.array(texts), source
