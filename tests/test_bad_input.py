"""Every mistake is one line: a catalogue of bad input for the five commands (Hydra's own errors,
bad settings, foreign and corrupt store files). Each case exits 2 with one line on stderr and no
traceback, and leaves the root exactly as it was, byte for byte.

Cases run in this process (`mas_cli.cli.main`), as the command line runs them; the store cases
start from a copy of a small trained store with one file spoiled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import assert_one_line, run, snapshot
from tests.mistakes import PIPELINE_MISTAKES

SMOKE = ["budget=smoke", 'train_overrides=["arch.width=16"]', "allow_undertrained=true"]
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


# ---- command lines: (id, argv, what the line says) --------------------------------------------
def cases() -> list[tuple[str, list[str], str]]:
    found = []
    for command in ("train", "align", "similarity", "report", "pipeline"):
        found += [
            (f"{command}-unknown-key", [command, "kk=4"], f"mas {command} has no setting kk"),
            (f"{command}-list-without-m", [command, "seed=1,2"], "a list is written seed=[1,2]"),
            (f"{command}-bad-launcher", [command, "hydra/launcher=nosuch"], "there is no hydra/launcher 'nosuch'"),
            (f"{command}-unknown-flag", [command, "--bogus"], f"see mas {command} --help"),
            (f"{command}-unparsable", [command, "seed=[1"], "cannot read the override"),
            (f"{command}-non-ascii", [command, "paths.root=öut"], "not allowed in an override"),
            (f"{command}-threads", [command, "threads=0"], "threads must be a positive integer"),
            (f"{command}-device", [command, "device=tpu"], "device must be one of auto, cpu, cuda"),
            (f"{command}-root-null", [command, "paths.root=null"], "paths.root must name a folder"),
            (f"{command}-seed-huge", [command, "seed=18446744073709551616"], "seed must be an integer in 0.."),
            (f"{command}-seed-negative", [command, "seed=-1"], "seed must be an integer in 0.."),
        ]
        if command != "report":
            found.append((f"{command}-budget", [command, "budget=huge"], "there is no budget 'huge'"))
            found.append((f"{command}-budget-lr", [command, "budget.lr=0"], "budget.lr must be positive"))
        found += hostile(command)
    train = [
        ("arch=gur", "did you mean gru?"),
        ("task=nosuch", "there is no task 'nosuch'"),
        ("arch.widht=3", "did you mean arch.width?"),
        ("gru", "is not a key=value override"),
        ("arch.width=-4", "arch.width must be a positive integer"),
        ("arch.width=abc", "arch.width must be a positive integer"),
        ("arch.dropout=1.5", "arch.dropout must be in [0, 1)"),
        ("arch.grad_clip=-1", "arch.grad_clip must be in"),
        ("task.void_p=1.0", "task.void_p must be in [0, 1)"),
        ("task.void_p=x", "task.void_p must be in [0, 1)"),
        ("task.held_out=[30]", "must lie within"),
        ("task.held_out=5", "task.held_out must be a list of integers"),
        ("task.min_count=0", "task.min_count must be a positive integer"),
        ("task.variant=triple", "task.variant must be one of"),
        ("task.transform=cube", "task.transform must be one of"),
        ("task.causal_model=down_up", "task.causal_model must be one of"),
        ("budget.max_steps=0", "budget.max_steps must be a positive integer"),
        ("budget.batch_size=-1", "budget.batch_size must be a positive integer"),
        ("budget.criterion=2", "budget.criterion must be in (0, 1]"),
        ("budget.warmup_steps=-1", "budget.warmup_steps must be an integer >= 0"),
        ("budget.val_every=x", "budget.val_every must be a positive integer"),
        ("seed=1.5", "seed must be an integer in 0.."),
        ("seed=true", "seed must be an integer in 0.."),
        ("paths.root=", "paths.root must name a folder"),
    ]
    found += [(f"train-{a}", ["train", a], m) for a, m in train]
    found += [
        ("train-lstm-odd", ["train", "arch=lstm", "arch.width=33"], "arch.width must be even for lstm"),
        ("train-layers", ["train", "arch=transformer", "arch.layers=0"], "arch.layers must be a positive integer"),
        ("train-hidden-layer", ["train", "arch=transformer", "arch.hidden_layer=2"], "arch.hidden_layer must be"),
        ("train-counts", ["train", "task.min_count=5", "task.max_count=3", "task.held_out=[]"], "must be at least"),
        ("train-held-all", ["train", "task.max_count=5", "task.held_out=[1,2,3,4,5]"], "covers every count"),
        ("train-max-ops", ["train", "task=arithmetic", "task.max_ops=25"], "must not exceed task.max_value"),
        ("train-curriculum", ["train", "task=arithmetic", "task.curriculum=3"], "task.curriculum must be null"),
        ("train-sweep-bad-job", ["train", "-m", "arch=gru,foo"], "there is no arch 'foo'"),
        ("train-sweep-bad-value", ["train", "-m", "seed=0,-1"], "seed must be an integer"),
    ]
    align = [
        (["gru", "lstm"], "name models as mas align a=<spec> b=<spec>"),
        (["a=grü"], "'ü' is not allowed"),
        (["a=gru:99999999999999999999999"], "the seed must be at most"),
        (["a=gru", "k=0"], "k must be a positive integer"),
        (["a=gru", "k=-1"], "k must be a positive integer"),
        (["a=gru", "k=many"], "k must be a positive integer"),
        (["a=gru", "k=17"], "k=17 is larger than the smallest site width"),
        (["a=gru", "site=middle"], "count/gru/0: site=middle: the model has no module middle"),
        (["a=gru", "site=layer:0"], "this model has no stack of decoder layers"),
        (["a=gru", "site=-x"], "site must be embed, hidden, layer:<i> or a module path"),
        (["a=gru", "swap=colour"], "swap=colour is not a variable of count/gru/0"),
        (["a=arithmetic/gru", "swap=count"], "swap=count is not a variable of arithmetic/gru/0"),
        (["a=gru", "method=probe"], "method must be one of"),
        (["a=gru", "b=lstm", "method=das"], "method=das aligns one model"),
        (["a=gru", "b=gru:0"], "same model twice"),
        (["a=gru", "models=[lstm]"], "not both"),
        ([], "name the models to align"),
        (["a=gru:x"], "is not [task/]arch[:seed]"),
        (["a=rnn"], "arch must be one of"),
        (["a=nosuchtask/gru"], "cannot compose the training config of nosuchtask/gru/0"),
        (["a=gru", "auto_train=false"], "count/gru/0 is not in the model store"),
        (["a=gru", "directions=[0-3]"], "directions item '0-3'"),
        (["a=gru", "directions=3"], "directions must be all, within, cross or a list"),
        (["a=gru", "train_overrides=5"], "train_overrides must be a list"),
        (["a=gru", "orthogonal_map=householder"], "orthogonal_map must be one of"),
        (["a=gru", "align_fn=householder"], "align_fn must be one of"),
        (["a=gru", "normalize=l2"], "normalize must be one of"),
        (["a=gru", "causal_model=up_sideways"], "causal_model=up_sideways does not fit count/gru/0"),
        (["a=gru", "causal_model=up_up"], "swap=count is not a variable"),
        (["a=gru", "swap=[count,count]"], "names a variable twice"),
        (["a=gru", "swap=[full,count]"], "full already holds every variable"),
        (["a=gru", "swap=[count,phase]", "null_block=true", "k=8"], "need 17 dims"),
        (["a=gru", "null_block=maybe"], "null_block must be true or false"),
        (["a=gru", "b=arithmetic/gru", "swap_by_task.arithmetic=bogus"], "swap=bogus is not a variable"),
        (["a=gru", "swap=[count,phase]", "swap_by_task.arithmetic=cumu_val"], "swap_by_task maps one variable"),
        (["a=gru", "b=lstm", "method=stitch", "swap=[count,phase]"], "method=stitch swaps one variable"),
        (["a=gru", "method=stitch"], "method=stitch takes two models"),
        (["models=[gru,lstm,gru:1]", "method=unimas"], "method=unimas takes two models"),
        (["a=gru", "b=lstm", "method=stitch", "directions=within"], "method=stitch fixes its directions"),
        (["a=gru", "b=lstm", "method=clmas", "site=embed"], "matches natural hidden states"),
        (["a=gru", "method=clmas"], "method=clmas takes 2 models or more"),
        (["a=gru", "b=lstm", "method=clmas", "cl.eps=-1"], "cl.eps must be in"),
        (["a=gru", "b=lstm", "method=clmas", "cl.loss=l1"], "cl.loss must be one of"),
        (["a=gru", "b=lstm", "method=clmas", "cl.directions=[2-2]"], "directions item '2-2'"),
        (["a=gru", "b=lstm", "method=clmas", "cl.bank_size=0"], "cl.bank_size must be a positive integer"),
        (["a=gru", "b=lstm", "method=clmas", "causal_model=up_up"], "drop causal_model="),
        (["a=gru", "budget.align.batch_size=0"], "budget.align.batch_size must be a positive integer"),
        (["a=gru", "budget.align.lr=0"], "budget.align.lr must be in (0, inf)"),
        (["a=gru", "budget.align.target_iia=2"], "budget.align.target_iia must be in (0, 1]"),
        (["a=gru", "allow_undertrained=maybe"], "allow_undertrained must be true or false"),
        (["a=gru", "force=maybe"], "force must be true or false"),
        (["a=gru", "models=5"], "models must be a list"),
        (["a=gru", "cl.epss=1"], "did you mean cl.eps?"),
        (["-m", "a=gru", "k=4,0"], "k must be a positive integer"),
    ]
    align += [  # models trained on demand take their task, arch and seed from the spec, runtime from the run
        (["a=gru", 'train_overrides=["arch=lstm"]'], "the model spec sets arch"),
        (["a=gru", 'train_overrides=["seed=3"]'], "the model spec sets seed"),
        (["a=gru", 'train_overrides=["task=count_mod"]'], "the model spec sets task"),
        (["a=gru", 'train_overrides=["+arch=lstm"]'], "the model spec sets arch"),
        (["a=gru", 'train_overrides=["budget=paper"]'], "take budget from this run"),
        (["a=gru", 'train_overrides=["budget.lr=0.1"]'], "take budget from this run"),
        (["a=gru", 'train_overrides=["paths.root=elsewhere"]'], "take paths from this run"),
        (["a=gru", 'train_overrides=["threads=1"]'], "take threads from this run"),
        (["a=gru", "budget.align.lr=1e999"], "budget.align.lr must be a finite number"),
        (["a=gru", "b=lstm", "method=clmas", "cl.eps=inf"], "cl.eps must be a finite number"),
    ]
    found += [(f"align-{i}-{' '.join(a)[:30]}", ["align", *SMOKE, *a], m) for i, (a, m) in enumerate(align)]
    hf = [  # HuggingFace models keep their own sizes (no arch.width)
        (["a=hf_llama", "site=model.layerz.1"], "no module model.layerz.1; did you mean model.layers.1"),
        (["a=hf_llama", "site=layer:9"], "site=layer:9: the model has layers 0..1 (model.layers)"),
        (["a=gru", "b=hf_gpt2", "site=transformer.h.0"], "count/gru/0: site=transformer.h.0: the model has no module"),
        (["a=hf_llama", 'train_overrides=["arch.width=16"]'], "mas train has no setting arch.width for arch=hf_llama"),
    ]
    plain = ["align", "budget=smoke", "allow_undertrained=true"]
    found += [(f"align-hf-{i}", [*plain, *a], m) for i, (a, m) in enumerate(hf)]
    hf_train = [  # what transformers itself refuses in a family's config, said before any work
        ("arch.hf.num_attention_heads=3", "transformers cannot build this llama (ValueError: The hidden size (64)"),
        ("arch.family=llamax", "arch.family=llamax is not a model type transformers knows"),
        ("arch.hidden_layer=5", "arch.hidden_layer must be between 1 and 2"),
    ]
    found += [(f"train-hf-{a}", ["train", "arch=hf_llama", a], m) for a, m in hf_train]
    similarity = [
        (["a=gru", "b=lstm", "rows=1"], "rows must be an integer ≥ 3"),
        (["a=gru", "b=lstm", "rows=2"], "rows must be an integer ≥ 3"),
        (["a=gru", "b=lstm", 'train_overrides=["arch=lstm"]'], "the model spec sets arch"),
        ([], "name two models"),
        (["a=gru"], "name two models"),
        (["a=gru", "b=gru"], "a and b are the same model"),
        (["a=gru", "b=lstm", "site=middle"], "site must be one of embed, hidden"),
        (["a=gru", "b=lstm", "per_count=0"], "per_count must be a positive integer"),
        (["a=gru", "b=lstm", "subsets=0"], "subsets must be a positive integer"),
        (["a=gru", "b=lstm", "rows=x"], "rows must be an integer ≥ 3"),
        (["a=gru", "b=lstm", "zscore=maybe"], "zscore must be true or false"),
        (["a=gru", "b=arithmetic/gru"], "lacks the Multi-Object stimuli"),
        (["a=gru", "b=lstm", "auto_train=false"], "is not in the model store"),
        (["a=rnn", "b=gru"], "arch must be one of"),
        (["gru", "lstm"], "name models as mas similarity a=<spec> b=<spec>"),
    ]
    found += [(f"similarity-{i}", ["similarity", *SMOKE, *a], m) for i, (a, m) in enumerate(similarity)]
    found += [
        ("report-no-source", ["report", "source=nowhere"], "source=nowhere is not a folder"),
        ("report-empty-root", ["report"], "no iia.csv or similarity.csv under"),
        ("report-out-is-a-file", ["report", "out=../a_file"], "is a file, not a folder"),
        ("report-typo", ["report", "sourse=x"], "did you mean source?"),
    ]
    pipeline = [  # the planner's own refusals (tests/test_pipeline.py), and what only the CLI sees
        *PIPELINE_MISTAKES,
        ("pipeline.archs=[]", "pipeline.archs is empty"),
        ("pipeline.report=maybe", "pipeline.report must be true or false"),
        ("experiment=nosuch", "there is no experiment 'nosuch'"),
        ("pipeline.seed=[0]", "did you mean pipeline.seeds?"),
        ("pipeline.fits=pairs pipeline.archs=[gru] pipeline.seeds=[0]", "needs two models or more"),
    ]
    found += [(f"pipeline-{a[:40]}", ["pipeline", *a.split(" ")], m) for a, m in pipeline]
    return found


def hostile(command: str) -> list[tuple[str, list[str], str]]:
    """What a careless hand types into any command: Hydra's deletions, interpolations that do not
    resolve, `+`/`++` typos, values read as inf, absurd thread counts, line breaks, folders Hydra
    cannot make, names longer than a file system allows, empty sweeps."""
    long_name = "x" * 300
    found = [
        ("delete-seed", ["~seed"], f"~seed: mas {command} reads every setting it declares; drop the deletion"),
        ("delete-device", ["~device"], f"~device: mas {command} reads every setting it declares"),
        ("delete-group", ["~budget"] if command != "report" else ["~threads"], "reads every setting it declares"),
        ("env-unset", ["seed=${oc.env:MAS_CATALOGUE_UNSET}"], "cannot resolve it"),
        ("env-unset-root", ["paths.root=${oc.env:MAS_CATALOGUE_UNSET}"], "cannot resolve it"),
        ("interpolation-key", ["seed=${nosuch.key}"], "cannot resolve it"),
        ("interpolation-self", ["seed=${seed}"], "cannot resolve it"),
        ("add-typo", ["+paths.rot=x"], f"mas {command} has no setting paths.rot; did you mean paths.root?"),
        ("force-add-typo", ["++paths.rot=x"], f"mas {command} has no setting paths.rot"),
        ("add-unknown", ["+nosuch=1"], f"mas {command} has no setting nosuch"),
        ("threads-huge", ["threads=10000"], "threads=10000 is more than this machine can use"),
        ("newline", ["seed=1\n2"], "cannot read the override"),
        ("run-dir", ["hydra.run.dir=/proc/mas-nope"], "hydra.run.dir=/proc/mas-nope cannot be made"),
        ("sweep-dir", ["-m", "hydra.sweep.dir=/proc/mas-nope", "threads=1,2"], "hydra.sweep.dir=/proc/mas-nope"),
        ("empty-range", ["-m", "seed=range(0,0)"], "seed=range(0,0) sweeps over no value"),
        ("empty-range-down", ["-m", "seed=range(5,2)"], "seed=range(5,2) sweeps over no value"),
        ("long-root", [f"paths.root={long_name}"], "longer than the file system allows"),
    ]
    if command != "report":
        found += [
            ("lr-inf", ["budget.lr=1e400"], "budget.lr must be a finite number, got inf"),
            ("lr-nan", ["budget.lr=nan"], "budget.lr must be a finite number, got nan"),
            ("lr-neg-inf", ["budget.lr=-inf"], "must be a finite number"),
        ]
    else:
        found += [("long-out", [f"out={long_name}"], "longer than the file system allows")]
    return [(f"{command}-{name}", [command, *argv], message) for name, argv, message in found]


CASES = cases()


@pytest.fixture(scope="session")
def empty_root(tmp_path_factory) -> Path:
    """A working folder holding a file named a_file and a root with nothing in it yet."""
    here = tmp_path_factory.mktemp("catalogue")
    (here / "a_file").write_text("x")
    (here / "out").mkdir()
    return here


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_mistake_is_one_line(empty_root, argv, fragment):
    before = snapshot(empty_root)
    given_root = any(a.startswith("paths.root=") for a in argv)
    code, err = run(argv if given_root else [*argv, "paths.root=out"], empty_root)
    assert_one_line(code, err, fragment)
    assert snapshot(empty_root) == before  # nothing written, not even a lock or a sweep record
