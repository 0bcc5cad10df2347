"""Models: what `load_model` loads (the built-ins, `torchvision:NAME`, `timm:NAME`, a user's
checkpoint, the deployment's models file) and the `ModelHandle` it returns."""

from . import catalog
from .architecture import Head
from .load import AUTO, FALLBACK, PREFERRED, ModelHandle, default_device, list_models, load_model
from .sources import is_source
from .specs import ModelSpec, get_model_spec

__all__ = ["AUTO", "FALLBACK", "PREFERRED", "Head", "ModelHandle", "ModelSpec", "catalog", "default_device",
           "get_model_spec", "is_source", "list_models", "load_model"]
