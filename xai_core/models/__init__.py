"""Models: what `load_model` loads (a built-in, `torchvision:NAME` or `timm:NAME` with a user's
checkpoint and labels, `hf:PATH_OR_ID` (a Hugging Face classifier, `hf.py`), or an entry of the
deployment's models file) and the `ModelHandle` it returns. Open `load.py` first (`load_model`,
`list_models`); `handle.py` holds `ModelHandle` and the guard around its shared module;
`architecture/` finds a model's layers, reshapes and heads; `memory.py` checks that a model fits
before it is built or moved to a GPU; `geometry.py` records how an image became the model's picture."""

from . import catalog
from .architecture import Head
from .checkpoints import Labels
from .handle import GuardedModule, LayerArg, ModelHandle, default_device, guard, layer_names
from .geometry import Geometry
from .preprocessing import Prepared, from_tensor
from .load import AUTO, DEFAULT_WEIGHTS, FALLBACK, PREFERRED, list_models, load_entry, load_model
from .sources import is_source
from .specs import ModelSpec, builtin_models, get_model_spec
from .weights import how_to_get

__all__ = ["AUTO", "DEFAULT_WEIGHTS", "FALLBACK", "Geometry", "GuardedModule", "Head", "Labels", "LayerArg", "ModelHandle",
           "ModelSpec", "PREFERRED", "Prepared", "builtin_models", "catalog", "default_device", "from_tensor", "get_model_spec", "guard",
           "how_to_get", "is_source", "layer_names", "list_models", "load_entry", "load_model"]
