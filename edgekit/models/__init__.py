"""Model architectures, built by name from a JSON-able spec so a checkpoint can be rebuilt anywhere.

Each architecture module registers itself in `MODELS` when imported; they are imported here, once, so
`edgekit.models.registry` knows no architecture module (add a new one's import below).
"""

from edgekit.models import rocket, sensor  # noqa: F401  fill MODELS
from edgekit.models.registry import MODELS, ModelSpec, build_model, count_params

__all__ = ["MODELS", "ModelSpec", "build_model", "count_params"]
