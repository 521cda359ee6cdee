"""Model architectures, built by name from a JSON-able spec so a checkpoint can be rebuilt anywhere."""

from edgekit.models.registry import MODELS, ModelSpec, build_model, count_params

__all__ = ["MODELS", "ModelSpec", "build_model", "count_params"]
