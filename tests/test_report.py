"""`mas report`: aggregation is exact, figures are written, bad input is refused, results stay."""

from __future__ import annotations

import pandas as pd
import pytest

from mas_cli.errors import ConfigError
from mas_cli.reporting import collect, pair_table, write_report
from tests.conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def fake_run(root, name: str, method: str, k: int, iia: dict[tuple[str, str], float]) -> None:
    """An iia.csv as `mas align` writes it, with the given validation IIA per (src, trg)."""
    rows = []
    for (src, trg), value in iia.items():
        for split in ("train", "val"):
            rows.append(
                {"method": method, "site": "hidden", "k": k, "variable": "count", "src": src, "trg": trg}
                | {"split": split, "iia": value, "tok_acc": 1.0, "loss": 0.1, "n": 500, "steps": 100}
                | {"stop": "step cap", "seed": 0, "normalize": "rms", "orthogonal_map": "cayley", "budget": "quick"}
            )
    (root / name).mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / name / "iia.csv", index=False)


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "out"
    g0, g1, l0, l1 = "count/gru/0", "count/gru/1", "count/lstm/0", "count/lstm/1"
    fake_run(root, "alignments/a/seed0", "mas", 16, {(g0, g0): 0.9, (g0, l0): 0.6, (l0, g0): 0.7, (l0, l0): 1.0})
    fake_run(root, "alignments/a/seed1", "mas", 16, {(g1, g1): 0.8, (g1, l1): 0.4, (l1, g1): 0.9, (l1, l1): 1.0})
    fake_run(root, "alignments/b/seed0", "mas", 4, {(g0, g0): 0.5, (g0, l0): 0.2, (l0, g0): 0.3, (l0, l0): 0.6})
    fake_run(root, "alignments/c", "das", 16, {(g0, g0): 0.95})
    return root


def test_tables_hold_mean_sd_and_n_over_seeds(results):
    rows = collect(results)
    assert len(rows) == 2 * (4 + 4 + 4 + 1) and rows.run.nunique() == 4
    val = rows[rows.split == "val"]
    within = pair_table(val, within=True).set_index(["k", "pair"])
    assert within.loc[(16, "gru"), "mas"] == "0.850 ± 0.071 (n=2)"  # 0.9 and 0.8
    assert within.loc[(16, "gru"), "das"] == "0.950 (n=1)"  # DAS beside MAS for the same arch
    cross = pair_table(val, within=False).set_index(["k", "pair"])
    assert cross.loc[(16, "gru → lstm"), "mas"] == "0.500 ± 0.141 (n=2)"
    assert cross.loc[(4, "lstm → gru"), "mas"] == "0.300 (n=1)"


def test_models_of_several_tasks_are_named_with_their_task(tmp_path):
    c0, c1, a0, a1 = "count/gru/0", "count/gru/1", "arithmetic/gru/0", "arithmetic/gru/1"
    iia = {(c0, c0): 0.9, (c0, c1): 0.8, (a0, a0): 0.7, (a0, a1): 0.6, (c0, a0): 0.5, (a0, c0): 0.4}
    fake_run(tmp_path, "alignments/cross", "mas", 16, iia)
    val = collect(tmp_path).query("split == 'val'")
    within = pair_table(val, within=True).set_index("pair").mas.to_dict()
    assert within == {"arithmetic/gru": "0.700 (n=1)", "count/gru": "0.900 (n=1)"}
    cross = pair_table(val, within=False).set_index("pair").mas.to_dict()
    assert cross == {
        "count/gru → count/gru": "0.800 (n=1)",
        "arithmetic/gru → arithmetic/gru": "0.600 (n=1)",
        "count/gru → arithmetic/gru": "0.500 (n=1)",
        "arithmetic/gru → count/gru": "0.400 (n=1)",
    }


def test_report_writes_summary_rows_heatmaps_and_a_k_curve(results):
    before = sorted(p for p in results.rglob("*") if p.is_file())
    write_report(results, results / "report")
    out = results / "report"
    names = {p.name for p in out.iterdir()}
    assert {"summary.md", "iia.csv", "iia-vs-k-hidden-count.png"} <= names
    assert {
        "heatmap-mas-hidden-count-k16.png",
        "heatmap-mas-hidden-count-k4.png",
        "heatmap-das-hidden-count-k16.png",
    } <= names
    assert all((out / n).read_bytes().startswith(PNG) for n in names if n.endswith(".png"))
    summary = (out / "summary.md").read_text()
    assert "| hidden | count | 16 | gru | 0.950 (n=1) | 0.850 ± 0.071 (n=2) |" in summary
    assert len(pd.read_csv(out / "iia.csv")) == 26
    # the report only adds files; rebuilding it finds the same runs (not its own output)
    assert sorted(p for p in results.rglob("*") if p.is_file() and "report" not in p.parts) == before
    assert write_report(results, out).run.nunique() == 4


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


def test_similarity_rows_sit_beside_the_iia_of_the_same_pair(results):
    sim = results / "similarity" / "hidden-s0" / "count.gru.0+count.lstm.0"
    sim.mkdir(parents=True)
    pd.DataFrame(
        [
            {"src": "count/gru/0", "trg": "count/lstm/0", "site": "hidden", "measure": m, "value": v, "sd": 0.01}
            | {"n": 10, "rows": 1000, "seed": 0}
            for m, v in (("cka", 0.42), ("rsa_cosine_spearman", 0.31))
        ]
    ).to_csv(sim / "similarity.csv", index=False)
    write_report(results, results / "report")
    summary = (results / "report" / "summary.md").read_text()
    section = summary.split("## MAS beside RSA and CKA")[1]
    table = [line for line in section.splitlines() if line.startswith("|")]
    header, row = table[0], table[2]
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    # cross-model IIA of gru/0 ~ lstm/0: mean of 0.6 and 0.7 at k 16, of 0.2 and 0.3 at k 4
    assert cells["pair"] == "count/gru/0 ~ count/lstm/0"
    assert float(cells["mas IIA k16"]) == pytest.approx(0.65) and float(cells["mas IIA k4"]) == pytest.approx(0.25)
    assert float(cells["cka"]) == 0.42 and float(cells["rsa_cosine_spearman"]) == 0.31
    assert len(pd.read_csv(results / "report" / "similarity.csv")) == 2


def test_a_root_with_only_similarity_results_gets_a_report(tmp_path):
    sim = tmp_path / "similarity" / "embed-s0" / "x"
    sim.mkdir(parents=True)
    pd.DataFrame(
        [{"src": "count/gru/0", "trg": "count/gru/1", "site": "embed", "measure": "cka", "value": 0.9, "sd": 0.0}]
    ).to_csv(sim / "similarity.csv", index=False)
    rows = write_report(tmp_path, tmp_path / "report")
    assert rows.empty
    assert "count/gru/0 ~ count/gru/1 | embed | 0.9" in (tmp_path / "report" / "summary.md").read_text()
