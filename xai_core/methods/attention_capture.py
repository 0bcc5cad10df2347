"""Where a vision transformer's attention is, and how one explained forward records it.

The attention methods (LeGrad, attention rollout, gradient-weighted relevance) need each block's
post-softmax attention probabilities A [B, heads, N, N], as tensors the rest of the forward really
used (so gradients with respect to them are the model's), and each block's output tokens [B, N, D].
Fused kernels (`scaled_dot_product_attention`, timm's `fused_attn`, Hugging Face's "sdpa")
never materialise A, so for the explained forward only, each kind of attention module takes its
own exact path, and is put back afterwards (also on error). No model code is copied:

- `nn.MultiheadAttention` (torchvision's ViT): a forward pre-hook asks it for per-head weights
  (`need_weights=True, average_attn_weights=False`: its non-fused path), and a forward hook replays
  the value aggregation A @ V and the output projection from those weights, so A is what the block
  uses (PyTorch returns a view of A that the graph never reads). TorchCAM 0.5's LeGrad does the same.
- timm's `Attention` family (`fused_attn`, `attn_drop`): `fused_attn` is switched off and the output
  of `attn_drop`, which is A in eval mode, is recorded.
- Hugging Face models: the attention class the model itself declares for `output_attentions`
  (`_can_record_outputs["attentions"]`) runs with the "eager" implementation, whose returned
  weights are the tensor it multiplies with V.

Hooks record only the calling thread's forward and are removed on exit (`capturing`)."""

from __future__ import annotations

import threading
import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..models import ModelHandle, guard
from ..models.architecture import TokenGrid, head_for, probe_input
from ..models.architecture.layers import is_attention
from .attention_pooling import token_weights

MULTIHEAD, TIMM_ATTENTION, HF_ATTENTION = "torch", "timm", "transformers"


@dataclass(frozen=True)
class Site:
    """One attention module: its path, its transformer block's path (whose output is the block's
    tokens), its kind (MULTIHEAD: torch's nn.MultiheadAttention, TIMM_ATTENTION or HF_ATTENTION) and, for HF_ATTENTION, where its output tuple holds the weights."""

    path: str
    block: str
    kind: str
    index: int = 1


@dataclass(frozen=True, eq=False)
class Layout:
    """What a model offers the attention methods: its attention sites in forward order, the prefix
    tokens (class, distillation, registers) before the gh x gw patch grid, `tail`, the head from
    the last block's tokens to the logits (it holds the model only by weak reference), and `weights`,
    the weight of each of the last block's tokens in what the head reads (`attention_pooling`:
    one-hot on the class token for a class-token classifier). `reason`: why the methods do not apply
    (one sentence about the model), or None when they do."""

    sites: tuple = ()
    prefix: int = 0
    grid: tuple = (0, 0)
    tail: Optional[Callable] = None
    reason: Optional[str] = None
    weights: tuple = ()


@dataclass
class Captured:
    """What one forward recorded: per site, its attention A [B, heads, N, N] and its block's output
    tokens [B, N, D], both still in the forward's graph when it ran with autograd on."""

    attentions: list = field(default_factory=list)
    tokens: list = field(default_factory=list)


def find_sites(model: nn.Module) -> list[Site]:
    """Every attention module of `model` that can be recorded, outermost first, in module order."""
    declared = _hf_declared(model)
    sites: list[Site] = []
    for path, module in model.named_modules():
        if any(path.startswith(s.path + ".") for s in sites):
            continue  # inside a site already found
        if isinstance(module, nn.MultiheadAttention):
            kind, index = MULTIHEAD, 1
        elif type(module) in declared:
            kind, index = HF_ATTENTION, declared[type(module)]
        elif all(hasattr(module, a) for a in ("fused_attn", "attn_drop", "num_heads")):
            kind, index = TIMM_ATTENTION, 1
        else:
            continue
        sites.append(Site(path, _block(model, path), kind, index))
    return sites


def _hf_declared(model: nn.Module) -> dict:
    """{attention class: index of its weights in its output} as Hugging Face models declare them for
    `output_attentions` (a class, or an `OutputRecorder` with `target_class` and `index`)."""
    found: dict = {}
    for module in model.modules():
        declared = getattr(type(module), "_can_record_outputs", None) or {}
        entry = declared.get("attentions") if isinstance(declared, dict) else None
        for item in entry if isinstance(entry, (list, tuple)) else [entry]:
            if isinstance(item, type):
                found[item] = 1
            elif item is not None and isinstance(getattr(item, "target_class", None), type):
                found[item.target_class] = int(getattr(item, "index", 1))
    return found


def _block(model: nn.Module, path: str) -> str:
    """The nearest ancestor of `path` that is not itself an attention module (the block)."""
    parts = path.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:end])
        if not is_attention(model.get_submodule(candidate)):
            return candidate
    return ""


# module -> {input size: Layout}. No value references its module (the tails hold it weakly), so a
# dropped model is freed with its entry.
_LAYOUTS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def attention_layout(handle: ModelHandle) -> Layout:
    """The model's `Layout` at the handle's input size, found once per model and size by one probe
    forward of two images (cached). Never raises for the model's sake: a probe that fails gives a
    `Layout` whose `reason` says so (not cached, so a passing failure is probed again)."""
    crop = tuple(handle.transforms.crop_size)
    size = (int(crop[0]), int(crop[-1]))
    with guard(handle):
        per_size = _LAYOUTS.setdefault(handle.module, {})
        layout = per_size.get(size)
        if layout is None:
            try:
                layout = per_size[size] = _probe(handle, size)
            except Exception as err:  # noqa: BLE001 - any failure of the model's own code: not offered, and why
                first = (str(err).splitlines() or [""])[0].strip().rstrip(".") or type(err).__name__
                layout = Layout(reason=f"probing {handle.title}'s attention failed ({first})")
    return layout


def _unreadable(handle: ModelHandle) -> str:
    """Why a model without attention sites is refused: a CNN, or attention modules of a kind this
    module cannot record (named)."""
    kinds = sorted({type(m).__name__ for m in handle.module.modules() if is_attention(m)})
    if not kinds:
        return f"{handle.title} has no attention blocks (it is a convolutional network)"
    windows = any("Window" in k for k in kinds)
    return (f"{handle.title}'s attention cannot be read: its attention modules ({', '.join(kinds)}) are not a "
            "kind whose weights can be recorded (PyTorch's nn.MultiheadAttention, timm's Attention or a Hugging "
            "Face attention declared for output_attentions)"
            + (" and they attend inside local windows (as Swin does), so no map would cover the whole image"
               if windows else ""))


def _probe(handle: ModelHandle, size: tuple) -> Layout:
    model = handle.module
    sites = tuple(find_sites(model))
    if not sites:
        return Layout(reason=_unreadable(handle))
    one = probe_input(model, size).to(handle.device)
    x = torch.cat([one, one.flip(-1)])
    try:
        with capturing(model, sites) as captured, torch.no_grad():
            logits = model(x)
    except (RuntimeError, ValueError, TypeError) as err:
        return Layout(sites, reason=f"{handle.title}'s attention could not be recorded ({str(err).splitlines()[0]})")
    for site, attention, tokens in zip(sites, captured.attentions, captured.tokens):
        if attention is not None and (attention.dim() != 4 or attention.shape[0] != x.shape[0]):
            return Layout(sites, reason=f"{handle.title} computes attention inside local windows (as Swin does), so "
                                        "no attention map covers the whole image")
        if attention is None or tokens is None:
            return Layout(sites, reason=f"{handle.title}'s attention block {site.block} did not run once per forward")
        if tokens.dim() != 3 or attention.shape[-1] != attention.shape[-2] or attention.shape[-1] != tokens.shape[1]:
            return Layout(sites, reason=f"{handle.title}'s attention in {site.block} is not self-attention over the "
                                        "block's tokens")
    grid = _token_grid(handle, sites[-1].block)
    tokens = captured.tokens[-1].shape[1]
    if grid is None or grid.prefix + grid.height * grid.width != tokens:
        return Layout(sites, reason=f"{handle.title}'s tokens do not form a patch grid after its class tokens")
    if any(a.shape[-1] != tokens for a in captured.attentions):
        return Layout(sites, reason=f"{handle.title}'s blocks do not all attend over the same tokens (a pooling "
                                    "transformer)")
    tail = head_for(model, sites[-1].block, one).weakly()  # cached with the model as key: held weakly
    if not tail.exact:  # a replay re-runs every block: skip them instead, where that gives the logits
        skipping = SkippingTail(model, [s.block for s in sites], handle.lock, size)
        with torch.no_grad():
            if torch.allclose(skipping(captured.tokens[-1]), logits, rtol=1e-4, atol=1e-5):
                tail = skipping
    weights = token_weights(model, tail, captured.tokens[-1])
    if weights is None:
        return Layout(sites, reason=f"{handle.title}'s classifier does not read the tokens of its last attention "
                                    "block")
    return Layout(sites, grid.prefix, (grid.height, grid.width), tail, weights=weights)


class SkippingTail:
    """The model's tail after its last block, for tokens given in place of that block's output: the
    model runs on a blank input with every block's `forward` swapped for a pass-through (the last one
    returns the tokens), so only the embedding, the final norm and the head compute. The swap lasts
    one call, under the model's lock. Used where no isolated head exists (Hugging Face classifiers,
    whose heads are Python code after a `ModelOutput`) and only where it reproduces the logits."""

    exact = True

    def __init__(self, model: nn.Module, blocks: list, lock, size: tuple) -> None:
        # weakly: the tail lives in the layout cache, whose key is the model
        self._model, self._blocks, self._lock, self._size = weakref.ref(model), list(blocks), lock, size

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        model = self._model()
        if model is None:
            raise ReferenceError("the model of this attention layout has been freed")
        blank = torch.zeros(tokens.shape[0], 3, *self._size, device=tokens.device, dtype=tokens.dtype)
        with self._lock, ExitStack() as stack:
            for path in self._blocks[:-1]:
                stack.enter_context(_forward_replaced(model.get_submodule(path), _pass_through))
            stack.enter_context(_forward_replaced(model.get_submodule(self._blocks[-1]),
                                                  lambda *args, **kwargs: tokens))
            return model(blank)


def _pass_through(*args, **kwargs):
    """A block's stand-in: its hidden states, unchanged (the first argument, or `hidden_states`)."""
    return args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))


@contextmanager
def _forward_replaced(module: nn.Module, forward) -> Iterator[None]:
    module.forward = forward  # an instance attribute: nn.Module.__call__ calls it instead of the class's
    try:
        yield
    finally:
        del module.forward


def _token_grid(handle: ModelHandle, block: str) -> Optional[TokenGrid]:
    """The `TokenGrid` of a target layer in `block` (or of the default layer)."""
    for name in list(handle.layers) + [handle.default_layer]:
        reshape = handle.reshape(name)
        if isinstance(reshape, TokenGrid) and (name == block or name.startswith(block + ".")):
            return reshape
    reshape = handle.reshape(handle.default_layer)
    return reshape if isinstance(reshape, TokenGrid) else None


@contextmanager
def capturing(model: nn.Module, sites) -> Iterator[Captured]:
    """Record every site's attention and block tokens during the calling thread's forwards inside
    this context (the last forward's are kept). Each attention module takes its exact path for the
    duration; hooks are removed and switches put back on exit, also on error."""
    owner = threading.get_ident()
    captured = Captured([None] * len(sites), [None] * len(sites))
    with ExitStack() as stack:
        for i, site in enumerate(sites):
            module = model.get_submodule(site.path)
            if site.kind == MULTIHEAD:
                _torch_hooks(stack, module, i, captured, owner)
            elif site.kind == TIMM_ATTENTION:
                stack.enter_context(_switched(module, "fused_attn", False))
                stack.callback(module.attn_drop.register_forward_hook(
                    _recorder(captured.attentions, i, owner, None)).remove)
            else:
                stack.enter_context(_switched(module.config, "_attn_implementation", "eager"))
                stack.callback(module.register_forward_hook(_recorder(captured.attentions, i, owner, site.index)).remove)
            block = model.get_submodule(site.block) if site.block else model
            stack.callback(block.register_forward_hook(_recorder(captured.tokens, i, owner, 0)).remove)
        yield captured


@contextmanager
def _switched(owner, name: str, value) -> Iterator[None]:
    before = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, before)


def _recorder(into: list, i: int, owner: int, index: Optional[int]):
    def hook(module, inputs, output):
        if threading.get_ident() == owner:
            into[i] = output if index is None or isinstance(output, torch.Tensor) else output[index]

    return hook


def _torch_hooks(stack: ExitStack, module: nn.MultiheadAttention, i: int, captured: Captured, owner: int) -> None:
    asked: dict = {}

    def before(mod, args, kwargs):
        if threading.get_ident() != owner:
            return None
        args, kwargs = list(args), dict(kwargs)
        # Positions follow nn.MultiheadAttention.forward(query, key, value, key_padding_mask,
        # need_weights, attn_mask, average_attn_weights, is_causal).
        asked["need"] = bool(args[4] if len(args) > 4 else kwargs.get("need_weights", True))
        asked["average"] = bool(args[6] if len(args) > 6 else kwargs.get("average_attn_weights", True))
        asked["value"] = args[2] if len(args) > 2 else kwargs["value"]
        for position, key, value in ((4, "need_weights", True), (6, "average_attn_weights", False)):
            if len(args) > position:
                args[position] = value
            else:
                kwargs[key] = value
        return tuple(args), kwargs

    def after(mod, args, kwargs, output):
        if threading.get_ident() != owner:
            return None
        attention = output[1]  # [B, heads, Q, K], the probabilities of the non-fused path
        captured.attentions[i] = attention
        replayed = _replay(mod, attention, asked["value"])
        weights = (attention.mean(dim=1) if asked["average"] else attention) if asked["need"] else None
        return replayed, weights

    stack.callback(module.register_forward_pre_hook(before, with_kwargs=True).remove)
    stack.callback(module.register_forward_hook(after, with_kwargs=True).remove)


def _replay(mod: nn.MultiheadAttention, attention: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """The attention module's output computed from `attention` (A @ V, then the output projection),
    as `F.multi_head_attention_forward` computes it, so that A is part of the block's graph."""
    if not mod.batch_first:
        value = value.transpose(0, 1)
    batch, length, embed = value.shape
    if mod.in_proj_weight is not None:
        weight = mod.in_proj_weight[2 * embed:]
    else:
        weight = mod.v_proj_weight
    bias = None if mod.in_proj_bias is None else mod.in_proj_bias[2 * embed:]
    v = F.linear(value, weight, bias).reshape(batch, length, mod.num_heads, -1).transpose(1, 2)
    out = torch.matmul(attention, v).transpose(1, 2).reshape(batch, attention.shape[-2], embed)
    out = F.linear(out, mod.out_proj.weight, mod.out_proj.bias)
    return out if mod.batch_first else out.transpose(0, 1)


__all__ = ["Captured", "HF_ATTENTION", "Layout", "MULTIHEAD", "Site", "TIMM_ATTENTION", "attention_layout", "capturing", "find_sites"]
