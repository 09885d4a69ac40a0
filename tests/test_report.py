"""`mas report`: cells aggregate over independent model pairs and never pool different settings,
the first screen says how far to trust the numbers, figures and summary.csv are written, bad
input is refused, results stay."""

from __future__ import annotations

import pandas as pd
import pytest

import mas_cli as mas
from mas_cli.errors import ConfigError
from mas_cli.reporting import collect, write_report
from mas_cli.reporting.cells import cells, tables
from mas_cli.reporting.collect import collect_items
from mas_cli.reporting.figures import figure_groups
from tests.conftest import publish_entry, run_cli
from tests.helpers import fake_run

PNG = b"\x89PNG\r\n\x1a\n"
G0, G1, L0, L1 = "count/gru/0", "count/gru/1", "count/lstm/0", "count/lstm/1"


def cell(table: pd.DataFrame, **where) -> pd.Series:
    chosen = table
    for key, value in where.items():
        chosen = chosen[chosen[key] == value]
    (row,) = [r for _, r in chosen.iterrows()]
    return row


def test_a_pair_in_several_runs_of_one_setting_counts_once(tmp_path):
    # pairwise fits of one design (gru + lstm), seeds 0 and 1; the seed-0 pair fitted twice
    fake_run(tmp_path, "a/seed0", {(G0, G0): 0.9, (G0, L0): 0.6, (L0, G0): 0.7, (L0, L0): 1.0})
    fake_run(tmp_path, "a/seed0-again", {(G0, G0): 0.7, (G0, L0): 0.4, (L0, G0): 0.5, (L0, L0): 1.0}, seed=1)
    fake_run(tmp_path, "a/seed1", {(G1, G1): 0.5, (G1, L1): 0.3, (L1, G1): 0.9, (L1, L1): 1.0})
    val = collect(tmp_path).query("split == 'val'")
    found = tables(val, pd.DataFrame())
    gru = cell(found["within"], arch="gru")
    # the seed-0 gru is one unit (mean of 0.9 and 0.7 = 0.8), the seed-1 gru another (0.5)
    assert (gru["mean"], gru.n_seeds, gru.n_rows) == (pytest.approx(0.65), 2, 3)
    assert gru.sd == pytest.approx(0.2121320, abs=1e-6)
    # 95 % t interval over the two units: 0.65 ± 12.706 · 0.2121 / √2
    assert (gru.ci_lo, gru.ci_hi) == pytest.approx((0.65 - 1.905934, 0.65 + 1.905934), abs=1e-4)
    cross = cell(found["cross"], pair="gru → lstm")
    assert (cross["mean"], cross.n_seeds) == (pytest.approx((0.5 + 0.3) / 2), 2)
    assert cross.iia_none == pytest.approx(0.1)
    # across models by setting: both directions of a model pair are one unit, not two seeds
    both = cell(found["by_setting"], scope="cross-model")
    seed0, seed1 = (0.6 + 0.7 + 0.4 + 0.5) / 4, (0.3 + 0.9) / 2
    assert (both["mean"], both.n_seeds) == (pytest.approx((seed0 + seed1) / 2), 2)


def test_fits_of_other_designs_and_settings_are_never_pooled(tmp_path):
    fake_run(tmp_path, "joint4", {(G0, G0): 0.9, (G1, G1): 0.8, (L0, L0): 1.0, (L1, L1): 1.0, (G0, L0): 0.2})
    fake_run(tmp_path, "pair", {(G0, G0): 0.5, (L0, L0): 0.6, (G0, L0): 0.7})
    fake_run(tmp_path, "none", {(G0, G0): 0.1, (L0, L0): 0.2, (G0, L0): 0.3}, normalize="none")
    fake_run(tmp_path, "k4", {(G0, G0): 0.3, (L0, L0): 0.4, (G0, L0): 0.5}, k=4)
    found = tables(collect(tmp_path).query("split == 'val'"), pd.DataFrame())
    within = found["within"].query("arch == 'gru'")
    assert sorted(within["mean"].round(3)) == [0.1, 0.3, 0.5, 0.85]  # four settings, four cells
    joint = cell(within, fit="count/gru×2 + count/lstm×2")
    assert (joint["mean"], joint.n_seeds) == (pytest.approx(0.85), 2)
    assert set(within[within.fit == "count/gru + count/lstm"].normalize) == {"rms", "none"}


def test_normalize_runs_and_their_similarity_stay_apart_in_every_table(tmp_path):
    smoke = dict(budget="smoke", allow_undertrained=True, train_overrides=["arch.width=16"], k=4)
    for normalize in ("rms", "none"):
        mas.align(["gru", "lstm"], root=tmp_path, normalize=normalize, **smoke)
    mas.similarity("gru", "lstm", root=tmp_path, **{key: v for key, v in smoke.items() if key != "k"})
    write_report(tmp_path, tmp_path / "report")
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    for table in ("within", "cross", "by_setting", "similarity"):
        part = summary[summary.table == table]
        assert set(part.normalize) == {"rms", "none"}, table  # two settings, never one cell
    sim = summary[summary.table == "similarity"]
    assert len(sim) == 2 and sim.cka.notna().all() and (sim.cka.nunique() == 1)
    assert {"mean", "sd", "ci_lo", "ci_hi", "n_seeds", "n_rows", "iia_none"} <= set(summary.columns)
    text = (tmp_path / "report" / "summary.md").read_text()
    section = text.split("## MAS beside RSA and CKA")[1]
    assert len([line for line in section.splitlines() if "count/gru/0 ~ count/lstm/0" in line]) == 2


def test_the_first_screen_says_a_smoke_report_is_no_result(tmp_path):
    smoke = dict(budget="smoke", allow_undertrained=True, train_overrides=["arch.width=16"], k=4)
    mas.align(["gru", "lstm"], root=tmp_path, **smoke)
    write_report(tmp_path, tmp_path / "report")
    first_screen = "\n".join((tmp_path / "report" / "summary.md").read_text().splitlines()[:20])
    assert "**1 run(s) use budget smoke" in first_screen and "do not read them as results" in first_screen
    assert "**4 of 4 directions stopped at the step cap" in first_screen
    assert "**2 model(s) did not reach their training criterion" in first_screen
    table = (tmp_path / "report" / "summary.md").read_text().split("## Within-model")[1]
    assert "step cap (1/1), undertrained, budget smoke" in table


def test_report_writes_summary_rows_heatmaps_and_a_k_curve(tmp_path):
    for k in (4, 16):
        iia = {(G0, G0): 0.5, (G0, L0): 0.2, (L0, G0): 0.3, (L0, L0): 0.6}
        fake_run(tmp_path, f"k{k}", iia, k=k, causal_model="task default")
    fake_run(tmp_path, "variant", {(G0, G0): 0.5, (G0, L0): 0.2}, causal_model="up_up")
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    write_report(tmp_path, tmp_path / "report")
    out = tmp_path / "report"
    names = {p.name for p in out.iterdir()}
    assert {"summary.md", "summary.csv", "iia.csv", "iia-vs-k-hidden-count.png"} <= names
    assert {"heatmap-mas-hidden-count-k16-task_default.png"} <= names  # what differs between heatmaps
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-_") for n in names)  # no spaces, no ~
    assert all((out / n).read_bytes().startswith(PNG) for n in names if n.endswith(".png"))
    summary = (out / "summary.md").read_text()
    assert all(f"]({n})" in summary for n in names if n.endswith(".png"))
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file() and "report" not in p.parts) == before
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == len([n for n in names if n.endswith(".png")])  # self-contained
    assert "<h2" in page and "How far to trust" not in page  # fake runs: nothing to warn about
    assert "\\begin{tabular}" in page and "| causal_model |" in page  # LaTeX and Markdown snippets
    assert "Every row: method mas, site hidden, variable count" in page  # the same on every row: said once
    assert write_report(tmp_path, out).run.nunique() == 3  # not its own output
    assert pd.read_csv(out / "summary.csv").causal_model.nunique() == 2


def test_no_figure_pools_runs_that_differ_in_one_setting(tmp_path):
    # one setting each, every other the same: the fit's design, normalize, the latent weight
    fake_run(tmp_path, "gg", {(G0, G0): 1.0, (G0, G1): 1.0}, items=True)
    fake_run(tmp_path, "gl", {(G0, G0): 0.6, (G0, L0): 0.2}, items=True)
    fake_run(tmp_path, "none", {(G0, G0): 0.3, (G0, L0): 0.1}, items=True, normalize="none")
    fake_run(tmp_path, "eps1", {(G0, G0): 0.9, (G0, L0): 0.5}, items=True, method="clmas", cl_eps=1.0)
    fake_run(tmp_path, "eps10", {(G0, G0): 0.8, (G0, L0): 0.4}, items=True, method="clmas", cl_eps=10.0)
    fake_run(tmp_path, "das-rms", {(G0, G0): 0.7}, method="das")
    fake_run(tmp_path, "das-none", {(G0, G0): 0.2}, method="das", normalize="none")
    write_report(tmp_path, tmp_path / "report")
    names = sorted(p.name for p in (tmp_path / "report").glob("*.png"))
    for kind, expected in (("heatmap-", 5), ("iia-by-count-", 5), ("curves-", 5), ("das-", 2)):
        assert len([n for n in names if n.startswith(kind)]) == expected, (kind, names)
    items = collect_items(tmp_path)
    for setting, part in figure_groups(items):  # each figure's rows come from one run
        assert part.run.nunique() == 1, setting
    gg = next(part for _, part in figure_groups(items) if set(part.run) == {"gg"})
    assert gg.correct.mean() == 1.0  # the gru-gru fit alone, not mixed with gru-lstm
    assert all(len(n) <= 80 for n in names)


def test_cells_of_one_pair_have_no_spread():
    rows = pd.DataFrame(
        {"k": [16, 16], "src": [G0, G0], "trg": [G0, G0], "iia": [0.2, 0.4], "iia_none": [0.1, 0.1]}
        | {"stop": ["step cap", "x"], "src_trained": [True, True], "trg_trained": [True, False]}
    )
    (one,) = [r for _, r in cells(rows, ["k"]).iterrows()]
    assert (one["mean"], one.n_seeds, one.n_rows, one.step_cap, one.undertrained) == (pytest.approx(0.3), 1, 2, 1, 1)
    assert pd.isna(one.sd) and pd.isna(one.ci_lo)


def test_a_root_without_results_is_refused(tmp_path):
    assert collect(tmp_path).empty
    with pytest.raises(ConfigError, match="no iia.csv or similarity.csv under"):
        write_report(tmp_path, tmp_path / "report")
    done = run_cli("report", f"paths.root={tmp_path / 'empty'}", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    (tmp_path / "runs").mkdir()
    done = run_cli("report", f"paths.root={tmp_path / 'runs'}", cwd=tmp_path)
    assert done.returncode == 2 and "run `mas align` first" in done.stderr
    assert not (tmp_path / "runs" / "report").exists()


def test_cli_reports_real_alignment_runs(tmp_path):
    tiny = ["budget=smoke", 'train_overrides=["arch.width=16"]', "allow_undertrained=true", "k=4", "paths.root=out"]
    assert run_cli("align", "-m", *tiny, "a=gru", "b=lstm", "k=2,4", cwd=tmp_path).returncode == 0
    done = run_cli("report", "paths.root=out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = tmp_path / "out" / "report"
    assert (report / "iia-vs-k-hidden-count.png").read_bytes().startswith(PNG)
    assert "2 alignment run(s)" in (report / "summary.md").read_text()


def test_a_root_with_only_similarity_results_gets_a_report(tmp_path):
    sim = tmp_path / "similarity" / "embed-s0" / "x"
    row = {"src": "count/gru/0", "trg": "count/gru/1", "site": "embed", "measure": "cka", "value": 0.9, "sd": 0.0}
    publish_entry(sim, {"similarity.csv": pd.DataFrame([row]).to_csv(index=False)})
    rows = write_report(tmp_path, tmp_path / "report")
    assert rows.empty
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "Every row: site embed" in summary and "| count/gru/0 ~ count/gru/1 | 0.9 |" in summary


SEVEN = {  # the seven runs of a baselines root over one GRU and one LSTM (the names say the method)
    "mas": ["method=mas"],
    "gram-schmidt": ["method=mas", "align_fn=gram_schmidt"],
    "count-phase": ["method=mas", "swap=[count,phase]"],
    "stitch": ["method=stitch"],
    "unimas": ["method=unimas"],
    "clmas": ["method=clmas"],
    "latent-stitch": ["method=latent_stitch"],
}


def test_tables_and_figures_show_what_differs_and_never_unused(tmp_path):
    from mas_cli.alignment.plan import plan_alignment
    from mas_cli.alignment.settings import ALIGN
    from tests.conftest import compose_config

    for name, overrides in SEVEN.items():
        plan = plan_alignment(compose_config("align", ["a=gru", "b=lstm", *overrides]))
        settings = {k: v for k, v in ALIGN.columns(plan.cfg).items() if k != "k"}
        k = 128 if plan.cfg.k == "full" else plan.cfg.k
        pairs = {(G0, G0): 0.9, (G0, L0): 0.7, (L0, G0): 0.8, (L0, L0): 0.95}
        fake_run(tmp_path, f"alignments/{name}/pair", pairs, items=True, k=k, **settings)
    write_report(tmp_path, tmp_path / "report")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "unused" not in summary and "unused" not in (tmp_path / "report" / "index.html").read_text()
    cross = summary.split("## Cross-model IIA, by architecture pair", 1)[1].split("\n## ", 1)[0]
    # the same on every row is said once above the table, not in a column of its own
    said = next(line for line in cross.splitlines() if line.startswith("Every row: "))
    assert said == "Every row: site hidden, variable count, fit count/gru + count/lstm.", said  # defaults unsaid
    header = next(line for line in cross.splitlines() if line.startswith("| "))
    assert "| method |" in header and "| cl_eps |" not in header and "orthogonal_map" not in header, header
    assert "| align_fn |" in header  # orthogonal and gram_schmidt tell MAS rows apart
    names = [p.name for p in (tmp_path / "report").iterdir()]
    assert len(names) > 10 and max(len(n) for n in names) <= 80, max(names, key=len)
    assert not [n for n in names if "unused" in n], names


def test_a_swap_column_that_repeats_the_variable_is_left_out(tmp_path):
    from mas_cli.reporting.markdown import rendered_tables

    pairs = {(G0, G0): 0.9, (G0, L0): 0.7, (L0, G0): 0.8, (L0, L0): 0.95}
    fake_run(tmp_path, "alignments/count/pair", pairs)
    fake_run(tmp_path, "alignments/full/pair", pairs, swap="full")
    rows = collect(tmp_path)
    val = rows[rows.split == "val"]
    header = list(
        rendered_tables(val, tables(val, pd.DataFrame()))["Within-model IIA (DAS directions), by architecture"].table
    )
    assert "swap" in header and "variable" not in header  # rows of swap full still say variable count
    val = val.assign(variable=val["swap"])  # as `mas align` writes them: a whole-state swap is variable full
    header = list(
        rendered_tables(val, tables(val, pd.DataFrame()))["Within-model IIA (DAS directions), by architecture"].table
    )
    assert "variable" in header and "swap" not in header


def test_a_high_chance_level_is_said_on_its_row():
    from mas_cli.reporting.markdown import shown

    rows = pd.DataFrame(
        {"site": ["embed", "hidden"], "src": [G0, G0], "trg": [G0, G0], "iia": [0.9, 0.9], "iia_none": [0.55, 0.08]}
        | {"stop": ["x", "x"], "src_trained": [True, True], "trg_trained": [True, True]}
    )
    notes = shown(cells(rows, ["site"]), ["site"]).set_index("site").notes
    assert notes["embed"] == "high chance level: read the margin" and notes["hidden"] == ""


def test_the_which_program_pivot_shows_each_chance_level(tmp_path):
    from mas_cli.reporting.markdown import hypotheses

    for causal_model in ("up_down", "up_up"):
        fake_run(
            tmp_path, f"alignments/das-{causal_model}/g0", {(G0, G0): 0.9}, method="das", causal_model=causal_model
        )
    val = collect(tmp_path).query("split == 'val'")
    pivot = hypotheses(tables(val, pd.DataFrame())["within"])
    assert pivot.set_index("arch").loc["gru", "up_up (count)"] == "0.900 (none 0.100)"
