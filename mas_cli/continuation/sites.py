"""Site names anyone can write, resolved to a module of the model (hooks.SiteRef).

    hidden, embed         the zoo's own names: each model says which module they are
                          (`site_paths`): the hidden site of an RNN is its step cell's output
                          (h, or [h; c]), of a transformer the residual after `hidden_layer`
                          layers; embed is the input embedding
    layer:<i>             the output of decoder layer i (0-based) of the model's layer stack
    model.layers.1        any module path (`model.named_modules()`), its output ...
    model.norm.input      ... or, with `.input`, what it receives

Paths are relative to the model's site root (`site_root()`: the model itself, or the wrapped
HuggingFace model, so that paths read as HuggingFace prints them). A path that is not there is
refused in one line naming the nearest real ones. `describe_sites` lists every module with the
shape of its output on a probe input (what `mas sites` prints).
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from mas_cli.continuation.hooks import SiteRef, collect
from mas_cli.errors import ConfigError
from mas_cli.models.base import device_of, layer_stack

PORTS = ("output", "input")


def site_root(model: nn.Module) -> nn.Module:
    root = getattr(model, "site_root", None)
    return root() if callable(root) else model


def named_sites(model: nn.Module) -> dict[str, str]:
    """The model's own site names (zoo models: hidden, embed) -> module paths."""
    paths = getattr(model, "site_paths", None)
    return paths() if callable(paths) else {}


def resolve_site(model: nn.Module, site: str) -> SiteRef:
    """`site` (a name, `layer:<i>`, or a module path with an optional .output/.input) as a SiteRef."""
    root = site_root(model)
    own = named_sites(model)
    if site in own:
        return _ref(own[site])
    if site.startswith("layer:"):
        stack = layer_stack(root)
        index = site.removeprefix("layer:")
        if stack is None:
            raise ConfigError(f"site={site}: this model has no stack of decoder layers; name a module path")
        size = len(root.get_submodule(stack))
        if not index.isdigit() or int(index) >= size:
            raise ConfigError(f"site={site}: the model has layers 0..{size - 1} ({stack}); choose one of them")
        return SiteRef(f"{stack}.{int(index)}")
    ref = _ref(site)
    paths = [p for p, _ in root.named_modules() if p]
    if ref.path not in paths:
        close = difflib.get_close_matches(ref.path, paths, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        names = ", ".join([*own, "layer:<i>"])
        raise ConfigError(
            f"site={site}: the model has no module {ref.path}; {hint}name one of {names} or a module path "
            "(`mas sites` lists them)"
        )
    return ref


def _ref(text: str) -> SiteRef:
    path, _, port = text.rpartition(".")
    return SiteRef(path, port) if path and port in PORTS else SiteRef(text)


def site_module(model: nn.Module, ref: SiteRef) -> nn.Module:
    return site_root(model).get_submodule(ref.path)


def probe_tokens(device) -> torch.Tensor:
    """Two tokens of id 1 (BOS in every task vocabulary; a valid id in any vocabulary)."""
    return torch.ones(1, 2, dtype=torch.long, device=device)


@torch.no_grad()
def site_width(model: nn.Module, ref: SiteRef) -> int:
    """The width of the site's value, read off one probe forward pass."""
    device = device_of(model)
    return int(collect(model, site_module(model, ref), ref.port, probe_tokens(device), None).shape[-1])


@torch.no_grad()
def describe_sites(model: nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
    """(module path, class name, output shape on a probe of [1, 2] tokens) of every module that
    runs in a forward pass, in the order they ran; a tuple output shows its first element."""
    root = site_root(model)
    names = {module: path for path, module in root.named_modules() if path}
    seen: dict[str, tuple[str, tuple[int, ...]]] = {}
    handles = []
    for module, path in names.items():

        def record(_module, _args, output, path=path):
            first = output[0] if isinstance(output, tuple) else output
            if path not in seen and isinstance(first, torch.Tensor):
                seen[path] = (type(_module).__name__, tuple(first.shape))

        handles.append(module.register_forward_hook(record))
    try:
        model(probe_tokens(device_of(model)))
    finally:
        for handle in handles:
            handle.remove()
    return [(path, kind, shape) for path, (kind, shape) in seen.items()]


def site_listing(model: nn.Module, what: str) -> list[str]:
    """What `mas sites` prints: the named sites, the layer stack, then every module that runs in a
    forward pass with its output shape (lines of at most 80 columns, a long path on its own)."""
    modules = describe_sites(model)
    shapes = {path: shape for path, _, shape in modules}
    lines = [f"sites of {what}", "shapes: the outputs on a probe of 1 sequence of 2 tokens", "named sites:"]
    for name, path in named_sites(model).items():
        lines.append(f"  {name:<10} {path:<40} {list(shapes.get(path, ()))}")
    stack = layer_stack(site_root(model))
    if stack is not None:
        last = len(site_root(model).get_submodule(stack)) - 1
        lines.append(f"  {'layer:<i>':<10} {stack + '.<i>':<40} i in 0..{last}")
    lines.append("every module (site=<path>, or <path>.input for what it receives):")
    for path, kind, shape in modules:
        row = f"  {path:<44} {kind:<18} {list(shape)}"
        lines.extend([f"  {path}", f"  {'':<20} {kind:<24} {list(shape)}"] if len(row) > 80 else [row])
    return lines
