"""Architectures by key: `{"arch": "tcn", "kwargs": {...}}` is all a run needs to rebuild a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgekit.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model architecture")


@dataclass
class ModelSpec:
    arch: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(arch=d["arch"], kwargs=dict(d.get("kwargs", {})))


def build_model(spec: ModelSpec) -> nn.Module:
    """The architecture `spec.arch` (registered by the modules `edgekit.models` imports) with its kwargs."""
    return MODELS.get(spec.arch)(**spec.kwargs)


def count_params(model: nn.Module) -> int:
    """Trainable parameters, or a model's own `param_count()` where its fitted numbers are buffers (the
    rocket teacher's thresholds)."""
    own = getattr(model, "param_count", None)
    return int(own()) if callable(own) else sum(p.numel() for p in model.parameters())


def load_weights(model: nn.Module, path: str) -> nn.Module:
    """Load a state dict saved with torch.save; weights_only refuses pickled code."""
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
