"""Local HuggingFace checkpoints as models on the command line: `mas align a=hf:<dir> b=...`.

`<dir>` is a `save_pretrained` folder (config.json and safetensors weights). It is loaded fully
offline (`local_files_only`), never with `trust_remote_code`, and never from a pickle: a folder
that holds only `pytorch_model.bin` is refused in one line. The model is wrapped as any torch
module is (wrapped.py): a frozen copy whose weight digest goes into every result, so a fit is
refused once a weight file changed. Its vocabulary must be the task's (the built-in tasks speak
their own tokens), or, with data=continuation, it reads prompts with the tokenizer saved in the
folder (`tokenizer.save_pretrained(dir)`). Its `hidden` site is the output of the middle decoder
layer (layer (n − 1) // 2, as the zoo's two-layer HF families), `embed` its input embedding, and
any module path or `layer:<i>` works as `site=` too.

    results name it  <task>/local_<folder name>/0
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mas_cli.data.texts import NAME as TEXT
from mas_cli.errors import ConfigError
from mas_cli.specs import ModelSpec

PREFIX = "hf:"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
NO_CODE_NO_PICKLE = {"trust_remote_code": False, "use_safetensors": True}  # never the folder's code, never a pickle


def is_checkpoint(text) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def checkpoint_folder(text: str) -> Path:
    """The folder of `hf:<dir>`, checked to be a safetensors `save_pretrained` folder (no torch)."""
    folder = Path(text[len(PREFIX) :]).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{text}: no such folder; give a save_pretrained folder, e.g. a=hf:./my-model")
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{text}: the folder has no config.json; save the model with model.save_pretrained(dir)")
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.glob("*.bin"))
        said = f"holds only pickled weights ({pickled[0]}), which mas never loads" if pickled else "holds no weights"
        raise ConfigError(f"{text}: the folder {said}; save it as safetensors with model.save_pretrained(dir)")
    return folder


def checkpoint_spec(text: str, task: str) -> ModelSpec:
    """How results name the checkpoint: `<task>/local_<folder name>/0`."""
    return ModelSpec(task, _name(checkpoint_folder(text)), 0)


def _name(folder: Path) -> str:
    # the folder's own name, `..` and `.` worked out but a link not followed (a store entry is one)
    return "local_" + re.sub(r"\W", "_", Path(os.path.abspath(folder)).name)  # never a zoo arch (hf_llama, ...)


def load_checkpoint(text: str, task: str, dtype: str = "float32"):
    """The checkpoint as a wrapped, frozen model (wrapped.py); for task `text` (data=continuation)
    a language model with the folder's own tokenizer; its weights held in `dtype` (float32 or
    bfloat16, runtime.dtype)."""
    from mas_cli.architectures import HF, require_extra

    require_extra(HF, text)
    import torch
    from transformers import AutoModelForCausalLM as CausalLM
    from transformers.utils import logging as hf_logging

    from mas_cli.models.base import layer_stack, module_path
    from mas_cli.models.hf import reason
    from mas_cli.wrapped import wrap

    folder = checkpoint_folder(text)
    # transformers' progress bar and warnings would break a refusal's one line: off, put back below
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        held = getattr(torch, dtype)  # float32 or bfloat16 (runtime dtype)
        model = CausalLM.from_pretrained(folder, local_files_only=True, **NO_CODE_NO_PICKLE, dtype=held)
        tokenizer = _tokenizer(folder, text) if task == TEXT else None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{text}: transformers cannot load it offline ({reason(exc)})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    stack = layer_stack(model)
    if stack is None:
        raise ConfigError(f"{text}: no stack of decoder layers found; wrap it in Python with mas.wrap(site=...)")
    middle = (len(model.get_submodule(stack)) - 1) // 2
    embed = module_path(model, model.get_input_embeddings())
    site = f"{stack}.{middle}"
    return wrap(model, site=site, task=task, name=_name(folder), embed=embed, who=text, tokenizer=tokenizer)


def _tokenizer(folder: Path, text: str):
    """The folder's own tokenizer (data=continuation), offline and without remote code."""
    from transformers import AutoTokenizer

    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ConfigError(
            f"{text}: the folder has no tokenizer; save it beside the model with tokenizer.save_pretrained(dir)"
        )
    return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
