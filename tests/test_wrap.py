"""Any torch module through `mas.wrap`: a hand-built module that holds the count in one known
direction is found at k = 1 by the real command path (store, run directory, iia.csv), an
untrained target stays at its chance level, a stored fit of other weights is refused, and a
module that cannot be aligned is refused in one line before anything runs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

import mas_cli as mas
from mas_cli.tasks import CountingTask
from tests.planted import PlantedCounter

TASK = CountingTask()
SMALL = ["budget.align.batch_size=64"]  # the generic path steps these modules position by position


class Untrained(nn.Module):
    """A recurrent module of random weights: a GRU cell stepped once per position, then a linear
    readout. It has never seen the task."""

    def __init__(self, width: int = 8):
        super().__init__()
        with torch.random.fork_rng():  # the same weights every time, the caller's stream untouched
            torch.manual_seed(5)
            self.embedding = nn.Embedding(len(TASK.vocab), width)
            self.cell = nn.GRUCell(width, width)
            self.head = nn.Linear(width, len(TASK.vocab))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        inputs = self.embedding(tokens)
        state, states = inputs.new_zeros(len(tokens), self.cell.hidden_size), []
        for t in range(tokens.shape[1]):
            state = self.cell(inputs[:, t], state)
            states.append(state)
        return self.head(torch.stack(states, 1))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("wrap")
    planted = mas.wrap(PlantedCounter(TASK, seed=0), site="cell", name="planted")
    untrained = mas.wrap(Untrained(), site="cell", name="untrained")
    fit = mas.align([planted, untrained], root=root, k=1, orthogonal_map="matrix_exp", overrides=SMALL)
    return root, fit, planted, untrained


def test_a_planted_direction_is_found_and_an_untrained_target_stays_at_chance(fitted):
    _, fit, planted, untrained = fitted
    val = fit.iia[fit.iia.split == "val"].set_index(["src", "trg"])
    mine, other = planted.spec.label, untrained.spec.label
    assert (mine, other) == ("count/planted/0", "count/untrained/0")
    assert val.loc[(mine, mine), "iia"] >= 0.99  # the planted count direction, at k = 1
    for source in (mine, other):
        row = val.loc[(source, other)]
        assert row.iia == row.iia_none  # no swap makes a model that never learned the task count
    assert planted.metrics["trained_to_criterion"] and not untrained.metrics["trained_to_criterion"]
    assert not val.loc[(mine, other), "trg_trained"]  # the report flags it, as for the zoo's models


def test_a_fit_of_other_weights_is_refused_in_one_line(fitted):
    root, fit, _, _ = fitted
    changed = Untrained()
    with torch.no_grad():
        changed.head.bias[0] += 1.0
    again = [
        mas.wrap(PlantedCounter(TASK, seed=0), site="cell", name="planted"),
        mas.wrap(changed, site="cell", name="untrained"),
    ]
    with pytest.raises(mas.ConfigError, match="computed from other weights of count/untrained/0.*force=true"):
        mas.align(again, root=root, k=1, orthogonal_map="matrix_exp", overrides=SMALL)
    same = [
        mas.wrap(PlantedCounter(TASK, seed=0), site="cell", name="planted"),
        mas.wrap(Untrained(), site="cell", name="untrained"),
    ]
    assert mas.align(same, root=root, k=1, orthogonal_map="matrix_exp", overrides=SMALL).reused


@pytest.mark.fast
@pytest.mark.parametrize(
    ("module", "settings", "message"),
    [
        ("not a module", {}, "needs a torch.nn.Module, got str"),
        (Untrained(), {"name": "gru"}, "must be letters, digits and _ .* not a zoo architecture"),
        (Untrained(), {"name": "my model"}, "must be letters, digits and _"),
        (Untrained(), {"site": "cel"}, "cel"),
        (nn.Sequential(nn.Linear(3, 3)), {"site": "0"}, "the module's forward failed on tokens"),
        (
            nn.Sequential(nn.Embedding(9, 4), nn.Linear(4, 3)),
            {"site": "0"},
            r"expected \(4, \d+, 9\), got \(4, \d+, 3\)",
        ),
    ],
    ids=["not_a_module", "zoo_name", "space_in_name", "no_such_site", "forward_fails", "wrong_logits"],
)
def test_a_module_that_cannot_be_aligned_is_refused_in_one_line(module, settings, message):
    with pytest.raises(mas.ConfigError, match=message) as refused:
        mas.wrap(module, **{"site": "cell", "name": "mine", **settings})
    assert "\n" not in str(refused.value)


def save_two(config, prefix) -> list:
    """Two causal LMs of `config` with random weights (seeds 0 and 1), saved with save_pretrained
    in <prefix>0 and <prefix>1; the caller's random stream is left alone."""
    from transformers import AutoModelForCausalLM

    folders = []
    for seed in (0, 1):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config)
        folder = prefix.with_name(f"{prefix.name}{seed}")
        model.save_pretrained(folder)
        folders.append(folder)
    return folders


def test_a_local_huggingface_checkpoint_is_wrapped_and_aligned_offline(tmp_path, monkeypatch):
    """A causal LM saved with save_pretrained and loaded from its folder with local_files_only:
    wrapped at a decoder layer, aligned with another (smoke budget), and refused once one of its
    weights changed on disk."""
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                "num_key_value_heads": 2, "max_position_embeddings": 64, "vocab_size": len(TASK.vocab)}  # fmt: skip
    folders = save_two(transformers.LlamaConfig(**settings), tmp_path / "llama")

    def load(folder, name):
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        return mas.wrap(model, site="model.layers.0", name=name)

    root = tmp_path / "out"
    fit = mas.align([load(folders[0], "llama_a"), load(folders[1], "llama_b")], root=root, k=2, budget="smoke")
    val = fit.iia[fit.iia.split == "val"]
    assert len(val) == 4 and (fit.run_dir / "iia.csv").is_file() and val.iia.between(0, 1).all()
    changed = transformers.AutoModelForCausalLM.from_pretrained(folders[1], local_files_only=True)
    with torch.no_grad():
        changed.lm_head.weight[0, 0] += 1.0
    changed.save_pretrained(folders[1])
    with pytest.raises(mas.ConfigError, match="computed from other weights of count/llama_b/0"):
        mas.align([load(folders[0], "llama_a"), load(folders[1], "llama_b")], root=root, k=2, budget="smoke")


def test_the_command_line_aligns_local_checkpoints_and_refuses_what_it_must(tmp_path, monkeypatch):
    """`mas align a=hf:<dir> b=hf:<dir>` offline: iia.csv written; a changed weight file makes the
    rerun refuse reuse in one line; a folder of pickled weights, or none, is refused in one line
    before anything is written."""
    transformers = pytest.importorskip("transformers")
    from tests.cli import run_printing

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = {
        "n_embd": 16,
        "n_inner": 32,
        "n_layer": 2,
        "n_head": 2,
        "n_positions": 64,
        "vocab_size": len(TASK.vocab),
    }
    folders = save_two(transformers.GPT2Config(**settings), tmp_path / "gpt")
    root = tmp_path / "out"
    command = ["align", f"a=hf:{folders[0]}", f"b=hf:{folders[1]}", "budget=smoke", "k=2", f"paths.root={root}"]
    code, out, err = run_printing(command, tmp_path)
    assert code == 0, err
    (iia,) = root.glob("alignments/*/count.local_gpt0.0+count.local_gpt1.0/iia.csv")
    code, listed, err = run_printing(["sites", f"model=hf:{folders[0]}"], tmp_path)
    assert code == 0 and "hidden     transformer.h.0" in listed and "sites of count/local_gpt0/0" in listed, err
    assert {"count/local_gpt0/0", "count/local_gpt1/0"} <= set(pd.read_csv(iia).src)
    changed = transformers.AutoModelForCausalLM.from_pretrained(folders[1], local_files_only=True)
    with torch.no_grad():
        changed.lm_head.weight[0, 0] += 1.0
    changed.save_pretrained(folders[1])
    code, _, err = run_printing(command, tmp_path)
    assert (
        code == 2 and "computed from other weights of count/local_gpt1/0" in err and len(err.strip().splitlines()) == 1
    )
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    for folder, said in (
        (pickled, "only pickled weights (pytorch_model.bin)"),
        (tmp_path / "nowhere", "no such folder"),
    ):
        code, _, err = run_printing([*command[:1], f"a=hf:{folder}", *command[2:]], tmp_path)
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, err
