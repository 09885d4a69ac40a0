"""The library's structure: one registry of settings, one table of methods, imports that flow one
way, and commands that answer help and refusals without importing torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mas_cli.alignment.job import read_alignment
from mas_cli.alignment.maps import ALIGNMENT_FUNCTIONS
from mas_cli.alignment.methods import METHODS
from mas_cli.alignment.plan import plan_alignment
from mas_cli.alignment.settings import ALIGN, ALIGN_FNS
from mas_cli.config import positive_int
from mas_cli.data import DATA_SOURCES
from mas_cli.errors import ConfigError
from mas_cli.registry import Setting
from mas_cli.reporting import write_report
from tests.cli import run_printing
from tests.conftest import compose_config
from tests.helpers import run_align

ROOT = Path(__file__).resolve().parents[1]


def test_a_new_setting_is_one_registry_entry(tmp_path, monkeypatch):
    dummy = Setting("dummy", lambda value, cfg: positive_int(value, "dummy"), tag="dummy")
    monkeypatch.setattr(ALIGN, "settings", [*ALIGN.settings, dummy])
    with pytest.raises(ConfigError, match="dummy must be a positive integer"):
        run_align(tmp_path, "a=gru", "+dummy=0")
    runs = [run_align(tmp_path, "a=gru", f"+dummy={value}") for value in (3, 4)]
    for value, run in zip((3, 4), runs):
        assert run.run_dir.parent.name == f"das-hidden-count-k4-s0-budget_smoke-dummy_{value}"  # the run name
        assert read_alignment(run.run_dir / "alignment.pt")["fingerprint"]["dummy"] == value  # the fingerprint
        assert set(pd.read_csv(run.run_dir / "iia.csv").dummy) == {value}  # the iia.csv column
    write_report(tmp_path, tmp_path / "report")  # the report keeps the two apart
    gathered = pd.read_csv(tmp_path / "report" / "iia.csv")
    assert sorted(gathered.dummy.unique()) == [3, 4]
    by_setting = pd.read_csv(tmp_path / "report" / "summary.csv").query("table == 'by_setting'")
    assert sorted(by_setting.dummy) == [3, 4]  # one cell each, never pooled
    summary = (tmp_path / "report" / "summary.md").read_text()
    table = summary.split("## Within and across models, by setting")[1].split("##")[0].splitlines()
    header = next(row for row in table if row.startswith("| "))
    assert "| dummy |" in header and len([row for row in table if row.startswith("| 3 |") or "| 4 |" in row]) == 2
    assert "Every row: method das, site hidden, variable count, k 4" in summary  # the rest: said once


def test_every_setting_has_its_default_in_conf_and_a_check():
    defaults = compose_config("align", [])
    options = [compose_config("align", [f"data={option}"]).data for option in DATA_SOURCES]
    for setting in ALIGN:
        group, _, key = setting.key.partition(".")
        if group == "data" and key != "source":  # declared by the data option that uses it (a file: null until given)
            assert any(key in option for option in options), setting.key
        elif setting.key != "budget":
            assert setting.read(defaults) is not None or setting.key in ("k", "causal_model"), setting.key
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        ALIGN.validate(compose_config("align", ["k=-1"]))


def test_the_methods_table_and_the_alignment_functions_are_each_one_list():
    assert set(ALIGN_FNS) == set(ALIGNMENT_FUNCTIONS)
    pipeline_methods = compose_config("pipeline", []).pipeline.ks_by_method
    assert set(pipeline_methods) == set(METHODS)  # every method has its k list in conf/pipeline.yaml
    for name, method in METHODS.items():
        cfg = compose_config("align", [f"method={name}", "a=gru", "b=lstm"] if name != "das" else ["a=gru"])
        plan = plan_alignment(cfg)
        assert plan.cfg.method == name and (plan.pairs == list(method.fixed_pairs or plan.pairs))
        assert plan.cfg.k == (16 if method.default_k == 16 else "full")


def _imports(path: Path) -> set[str]:
    """Every mas_cli module a file imports, at any depth of the file."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if package.startswith("tasks"):
        package = "mas_cli." + package
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: -node.level] + ([base] if base else []))
            found.add(base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("mas_cli")}


# Which parts of the library each part may not import: data flows one way.
FORBIDDEN = {
    "mas_cli.tasks": ("mas_cli.",),
    "mas_cli.models": ("mas_cli.alignment", "mas_cli.zoo", "mas_cli.training", "mas_cli.pipeline", "mas_cli.reporting"),
    "mas_cli.alignment": (
        "mas_cli.pipeline",
        "mas_cli.reporting",
        "mas_cli.correlative",
        "mas_cli.lm_case",
        "mas_cli.api",
    ),
    "mas_cli.zoo": ("mas_cli.alignment", "mas_cli.pipeline", "mas_cli.reporting", "mas_cli.correlative"),
    "mas_cli.correlative": ("mas_cli.alignment", "mas_cli.pipeline", "mas_cli.reporting", "mas_cli.api"),
    "mas_cli.reporting": ("mas_cli.pipeline", "mas_cli.lm_case", "mas_cli.api"),
    "mas_cli.pipeline": ("mas_cli.api",),
    "mas_cli.data": ("mas_cli.alignment", "mas_cli.pipeline", "mas_cli.reporting", "mas_cli.lm_case", "mas_cli.api"),
    "mas_cli.lm_case": ("mas_cli.pipeline", "mas_cli.api"),
    "mas_cli.config": ("mas_cli.alignment", "mas_cli.models", "mas_cli.zoo", "mas_cli.continuation"),
    "mas_cli.continuation": (
        "mas_cli.alignment",
        "mas_cli.zoo",
        "mas_cli.training",
        "mas_cli.pipeline",
        "mas_cli.reporting",
    ),
}


def test_imports_flow_one_way():
    for path in [*ROOT.glob("mas_cli/**/*.py"), *ROOT.glob("tasks/*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        name = "mas_cli." + name if name.startswith("tasks") else name
        imported = _imports(path)
        if not name.startswith(("mas_cli.commands", "mas_cli.cli")):
            assert not any(i.startswith("mas_cli.commands") for i in imported), f"{name} imports commands/"
        for part, forbidden in FORBIDDEN.items():
            if name.startswith(part):
                own = [i for i in imported if not i.startswith(part)]
                bad = [i for i in own if i.startswith(forbidden)]
                assert not bad, f"{name} imports {bad}"


def test_commands_are_thin():
    for path in ROOT.glob("mas_cli/commands/*.py"):
        if path.name not in ("__init__.py", "common.py"):
            assert len(path.read_text().splitlines()) <= 40, path.name


QUICK = [
    ["--help"],
    ["--version"],
    ["align", "--help"],
    ["train", "arch=gur"],
    ["train", "kk=4"],
    ["align", "gru", "lstm"],
    ["align", "a=gru", "k=0"],
    ["similarity", "a=gru"],
    ["pipeline", "pipeline.archs=[]"],
    ["report", "source=nowhere"],
]


@pytest.mark.parametrize("argv", QUICK, ids=" ".join)
def test_help_and_refusals_never_import_torch(argv, tmp_path):
    probe = (
        "import sys\nfrom mas_cli import cli\n"
        f"try:\n    cli.main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
        "print('torch' in sys.modules, code, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    torch_loaded, code = done.stderr.strip().splitlines()[-1].split()
    assert torch_loaded == "False", done.stderr
    assert code == ("0" if argv[-1].startswith("--") else "2"), done.stderr


def test_planning_and_the_python_api_import_no_torch():
    modules = ["mas_cli", "mas_cli.api", "mas_cli.pipeline.plan", "mas_cli.alignment.plan", "mas_cli.zoo"]
    modules += ["mas_cli.correlative.run", "mas_cli.commands.align", "mas_cli.reporting"]
    probe = (
        f"import importlib, sys\nfor m in {modules!r}:\n    importlib.import_module(m)\nprint('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_every_package_is_installed():
    """A wheel holds only the packages pyproject.toml lists (an editable install hides a missing one)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("mas_cli/**/__init__.py")}
    assert found | {"mas_cli.conf", "mas_cli.tasks"} == listed


def test_the_readme_counts_what_it_counts():
    """Counts the README states are the repository's own: the planted faults of scripts/mutants.py, the
    catalogue's mistaken command lines and spoiled stores."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutants", ROOT / "scripts" / "mutants.py")
    mutants = importlib.util.module_from_spec(spec)
    sys.modules["mutants"] = mutants  # its dataclasses look their module up
    try:
        spec.loader.exec_module(mutants)
    finally:
        del sys.modules["mutants"]
    readme = (ROOT / "README.md").read_text()
    assert f"plants\n  {len(mutants.MUTANTS)} named faults" in readme
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "",
         "tests/test_bad_input.py", "tests/test_bad_stores.py"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout  # fmt: skip
    counts = {name: collected.count(f"::{name}[") for name in ("test_every_mistake_is_one_line",
              "test_spoiled_store_files_are_one_line_and_run_no_code",
              "test_planted_links_are_refused_and_nothing_outside_changes")}  # fmt: skip
    mistakes, spoiled, planted = counts.values()
    assert mistakes > 300 and spoiled > 20 and planted > 20, counts
    stores = f"{spoiled + planted} spoiled or planted stores\n  ({spoiled} forged or corrupt"
    assert f"runs {mistakes} mistaken command lines" in readme and stores in readme


def test_nothing_is_compiled_and_no_compiler_is_needed(tmp_path):
    """No C++ anywhere: an alignment on a machine without any compiler says nothing of compiling."""
    sources = "\n".join(p.read_text() for p in (ROOT / "mas_cli").rglob("*.py"))
    assert not list((ROOT / "mas_cli").rglob("*.cpp")) and "cpp_extension" not in sources
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}  # no c++, no cc, no ninja
    argv = [
        "align",
        "a=gru",
        "b=lstm",
        "k=4",
        "budget=smoke",
        "allow_undertrained=true",
        'train_overrides=["arch.width=16"]',
    ]
    done = subprocess.run([sys.executable, "-m", "mas_cli.cli", *argv, "paths.root=out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "compil" not in (done.stdout + done.stderr).lower()


def test_the_method_help_names_every_method_of_the_table_and_its_default_k():
    code, shown, err = run_printing(["align", "--help"], ROOT)
    assert code == 0, err
    words = " ".join(shown.split())  # the help wraps at the terminal's width
    method_help = words.split("method=mas", 1)[1].split("site=", 1)[0]
    named = set(re.findall(r"[a-z_]+", method_help.split(";")[0]))
    assert set(METHODS) <= named, set(METHODS) - named
    # The default k lives in the methods table; the help must say the same numbers.
    k_help = words.split(" k=null", 1)[1].split("align_fn=", 1)[0]
    assert f"unset: {METHODS['mas'].default_k};" in k_help, k_help
    assert METHODS["stitch"].default_k == "full" and "full width for stitch" in k_help, k_help


def _git_grep(*args: str) -> list[str]:
    """Matches in tracked files other than this one (which names the patterns)."""
    argv = ["git", "grep", *args, "--", f":!{Path(__file__).relative_to(ROOT)}"]
    found = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    return found.stdout.splitlines()


def test_every_method_reference_names_a_section_of_methods_md():
    lines = (ROOT / "docs" / "METHODS.md").read_text().splitlines()
    headings = {h.lstrip("#").strip() for h in lines if h.startswith("#")}
    cited = _git_grep("-h", "-o", "METHODS.md § [A-Za-z ]*")
    assert len(cited) >= 50, cited  # code, configs and docs cite it instead of a spec the repository lacks
    for cite in cited:
        section = cite.split("§ ", 1)[1].strip()
        assert any(section.startswith(h) for h in headings), f"{cite}: no such section in docs/METHODS.md"
    assert not _git_grep("-n", "SPEC §")
