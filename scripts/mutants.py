"""Named faults in the code that computes the reported numbers, and the tests that must catch them.

Each mutant replaces one piece of product code (the text must occur exactly once), runs the
tests meant to kill it, and restores the file. A mutant that every test survives is a hole in the
suite. Ends with `mutants: N killed, M survived`; the exit status is 1 when any survived.

    .venv/bin/python scripts/mutants.py              # every mutant (about 5 minutes on 2 cores)
    .venv/bin/python scripts/mutants.py --only trial_always_right
    .venv/bin/python scripts/mutants.py --list

The trained models of tests/trained.py are kept between the runs (MAS_TRAINED_CACHE), so each run
only fits and scores; a mutant of training code is still judged on models trained without it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORACLE = ["tests/test_oracle.py"]


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...] = tuple(ORACLE)


MUTANTS = [
    Mutant(
        "trial_always_right",
        "every trial (IIA item, task-accuracy sequence) counts as right",
        "mas_cli/evaluation.py",
        "    return wrong == 0",
        "    return wrong >= 0",
    ),
    Mutant(
        "scoring_one_step_early",
        "the engine's label columns start one position before τ",
        "mas_cli/alignment/items.py",
        "    columns = cf.tau[:, None] + np.arange(cf.tokens.shape[1])[None, :]",
        "    columns = cf.tau[:, None] - 1 + np.arange(cf.tokens.shape[1])[None, :]",
    ),
    Mutant(
        "scoring_one_step_late",
        "the engine's label columns start one position after τ",
        "mas_cli/alignment/items.py",
        "    columns = cf.tau[:, None] + np.arange(cf.tokens.shape[1])[None, :]",
        "    columns = cf.tau[:, None] + 1 + np.arange(cf.tokens.shape[1])[None, :]",
    ),
    Mutant(
        "labels_from_one_step_early",
        "the causal model's scored predictions start one step before τ",
        "tasks/counterfactual.py",
        "    after_tau = np.arange(tokens.shape[1])[None, :] >= tau[:, None]",
        "    after_tau = np.arange(tokens.shape[1])[None, :] >= tau[:, None] - 1",
        ("tests/test_counterfactual.py",),
    ),
    Mutant(
        "tau_off_by_one",
        "an RNN target's state is taken one step before τ",
        "mas_cli/continuation/recurrent.py",
        '        return {"target_state": self.collect_at(tokens, tau), "inputs": inputs}',
        '        return {"target_state": self.collect_at(tokens, tau - 1), "inputs": inputs}',
    ),
    Mutant(
        "sigma_off_by_one",
        "the source's state is taken one step before σ",
        "mas_cli/alignment/items.py",
        "        source_state=source.at(site).collect_at(tensor(cf.source), tensor(cf.sigma)),",
        "        source_state=source.at(site).collect_at(tensor(cf.source), tensor(cf.sigma) - 1),",
    ),
    Mutant(
        "generic_patch_one_position_late",
        "the generic path writes a whole-sequence site one position after the one asked",
        "mas_cli/continuation/hooks.py",
        "            return value.index_put((rows, positions), values.to(value.dtype))",
        "            return value.index_put((rows, (positions + 1) % value.shape[1]), values.to(value.dtype))",
        ("tests/test_continuation.py",),
    ),
    Mutant(
        "generic_step_patch_one_call_early",
        "the generic path writes a once-per-position site at the call before the asked position",
        "mas_cli/continuation/hooks.py",
        "        here = at_call.get(call)",
        "        here = at_call.get(call + 1)",
        ("tests/test_continuation.py",),
    ),
    Mutant(
        "generic_collect_one_position_early",
        "the generic path reads the site one position before the asked one",
        "mas_cli/continuation/hooks.py",
        "    return values[torch.arange(len(values), device=values.device), positions]",
        "    return values[torch.arange(len(values), device=values.device), (positions - 1).clamp(min=0)]",
        ("tests/test_continuation.py",),
    ),
    Mutant(
        "generic_scores_one_position_late",
        "the generic path scores the logits one position after each label's",
        "mas_cli/continuation/generic.py",
        "self.logits(features, item, batch.tau[item] + column), batch.labels[scored]",
        "self.logits(features, item, (batch.tau[item] + column + 1) % features.shape[1]), batch.labels[scored]",
        ("tests/test_continuation.py",),
    ),
    Mutant(
        "generic_target_state_one_step_early",
        "the generic path keeps a target's site one position before τ",
        "mas_cli/continuation/generic.py",
        '        return {"target_state": self.collect_at(tokens, tau), "tokens": tokens}',
        '        return {"target_state": self.collect_at(tokens, (tau - 1).clamp(min=0)), "tokens": tokens}',
        ("tests/test_continuation.py",),
    ),
    Mutant(
        "source_and_target_swapped",
        "the hidden-site interchange takes the source's state as the target's and vice versa",
        "mas_cli/alignment/targets.py",
        "        [interchange(p.batch.target_state, p.batch.source_state, target_rows, p.source_rows) for p in parts]",
        "        [interchange(p.batch.source_state, p.batch.target_state, target_rows, p.source_rows) for p in parts]",
    ),
    Mutant(
        "no_intervention",
        "every method's interchange leaves the target as it is",
        "mas_cli/alignment/interchange.py",
        "    return stitch if zero_mask else swap",
        "    return lambda h_target, h_source, target, source: h_target",
    ),
    Mutant(
        "swap_reads_the_target_coordinates",
        "the swap reads the source's vector through the target's alignment function",
        "mas_cli/alignment/interchange.py",
        "    return h_target + target.write(source.coordinates(h_source) - target.coordinates(h_target))",
        "    return h_target + target.write(target.coordinates(h_source) - target.coordinates(h_target))",
    ),
    Mutant(
        "stitching_keeps_the_target",
        "stitching keeps the target's own aligned coordinates (no zero mask)",
        "mas_cli/alignment/interchange.py",
        "    return target.center + target.write(source.coordinates(h_source))",
        "    return h_target + target.write(source.coordinates(h_source) - target.coordinates(h_target))",
    ),
    Mutant(
        "null_block_overlaps_the_variables",
        "the null block starts one coordinate inside the last variable block",
        "mas_cli/alignment/swaps.py",
        "        blocks.append(Block(NULL_BLOCK, blocks[-1].stop, smallest))",
        "        blocks.append(Block(NULL_BLOCK, blocks[-1].stop - 1, smallest))",
    ),
    Mutant(
        "chance_level_with_the_intervention",
        "iia_none is measured with the intervention",
        "mas_cli/alignment/job.py",
        "            none = aligner.evaluate(d, data, rows=weights, interchange=unintervened)",
        "            none = aligner.evaluate(d, data, rows=weights)",
    ),
    Mutant(
        "task_accuracy_scores_every_position",
        "task accuracy scores every non-pad prediction, not the response phase",
        "mas_cli/evaluation.py",
        "            scored=torch.from_numpy(task.response_mask(tokens)).to(device),",
        "            scored=torch.from_numpy(tokens != 0).to(device),",
    ),
    Mutant(
        "report_counts_rows_as_seeds",
        "a report cell counts every row as a seed instead of each model pair once",
        "mas_cli/reporting/cells.py",
        '                "n_seeds": len(group),',
        '                "n_seeds": int(group.n_rows.sum()),',
        ("tests/test_report.py",),
    ),
    Mutant(
        "report_pools_settings",
        "the report groups by method, site, variable, k and fit only, pooling every other setting",
        "mas_cli/reporting/collect.py",
        '    return list(dict.fromkeys([*ALWAYS, *ALIGN.grouping(), "fit"]))',
        '    return list(dict.fromkeys([*ALWAYS, "fit"]))',
        ("tests/test_report.py",),
    ),
    Mutant(
        "claims_per_direction",
        "a claim's unit is a direction, not an unordered model pair (both directions of one pair count twice)",
        "mas_cli/reporting/claims.py",
        '    unit = [" ~ ".join(sorted({s, t})) for s, t in zip(rows.src, rows.trg)]',
        '    unit = [f"{s} > {t}" for s, t in zip(rows.src, rows.trg)]',
        ("tests/test_claims.py",),
    ),
    Mutant(
        "claims_judge_the_mean",
        "an at-least rule holds when the mean clears it, whatever the interval",
        "mas_cli/reporting/claims.py",
        '        holds, fails = low >= rule["at_least"], high < rule["at_least"]',
        '        holds, fails = found["mean"] >= rule["at_least"], high < rule["at_least"]',
        ("tests/test_claims.py",),
    ),
    Mutant(
        "claims_from_smoke",
        "smoke-budget numbers give verdicts",
        "mas_cli/reporting/claims.py",
        "    note = SMOKE if smoke else undertrained",
        "    note = undertrained",
        ("tests/test_claims.py",),
    ),
    Mutant(
        "gradient_split_at_or_above",
        "graded symbols: items at the median value count as the upper half",
        "mas_cli/reporting/claims.py",
        "    upper = value > value.drop_duplicates().median()",
        "    upper = value >= value.drop_duplicates().median()",
        ("tests/test_claims.py",),
    ),
    Mutant(
        "gradient_ignores_by",
        "graded symbols: the |original − swapped| claim reads the swapped-in value",
        "mas_cli/reporting/claims.py",
        '    value = rows.after if spec["by"] == "after" else (rows.before - rows.after).abs()',
        "    value = rows.after",
        ("tests/test_claims.py",),
    ),
    Mutant(
        "hf_positions_by_column",
        "a HuggingFace model's positions count columns, padding included (GPT-2's move under left padding)",
        "mas_cli/models/hf.py",
        "    positions = (real.cumsum(1) - 1).clamp(min=0)",
        "    positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)",
        ("tests/test_padding.py",),
    ),
    Mutant(
        "items_export_drops_a_label",
        "an exported items file leaves out each item's first scored position",
        "mas_cli/data/items_file.py",
        '"scored": np.flatnonzero(cf.label_mask[i]).tolist(),',
        '"scored": np.flatnonzero(cf.label_mask[i])[1:].tolist() or [int(cf.tau[i])],',
        ("tests/test_items_file.py",),
    ),
    Mutant(
        "items_label_one_late",
        "an items file's label list is scored from τ + 1 instead of τ",
        "mas_cli/data/items_file.py",
        "tuple(range(tau, tau + len(label)))",
        "tuple(range(tau + 1, tau + 1 + len(label)))",
        ("tests/test_items_file.py",),
    ),
    Mutant(
        "continuation_label_from_target",
        "a continuation item's label is the target's own continuation, not the source's",
        "mas_cli/data/continuation.py",
        "source.task.encoded[p] + continued(source)[p]",
        "source.task.encoded[p] + continued(target)[p]",
        ("tests/test_continuation_data.py",),
    ),
    Mutant(
        "greedy_reads_the_last_column",
        "greedy continuation reads each prompt's next token at the batch's last column (padding)",
        "mas_cli/data/continuation.py",
        "readout(features[rows, lengths - 1]).argmax(-1)",
        "readout(features[rows, -1]).argmax(-1)",
        ("tests/test_continuation_data.py",),
    ),
    Mutant(
        "lm_case_pair_from_one_direction",
        "a model pair's IIA in the language-model case is one direction's, not the mean of both",
        "mas_cli/lm_case/run.py",
        '"iia": val.iia.mean()',
        '"iia": val.iia.iloc[0]',
        ("tests/test_lm_case.py",),
    ),
    Mutant(
        "report_unit_per_direction",
        "a report cell's unit is a direction, so the two directions of one model pair count as two seeds",
        "mas_cli/reporting/cells.py",
        "        unit=unordered_pair(rows.src, rows.trg),  # a → b and b → a: one pair of models, one unit",
        '        unit=rows.src + " > " + rows.trg,',
        ("tests/test_report.py",),
    ),
    Mutant(
        "report_pools_inaccessible_directions",
        "CLMAS cells average the directions into the inaccessible model with the behaviour-trained ones",
        "mas_cli/reporting/cells.py",
        '    return pd.Series(np.where(latent, ", into the inaccessible model", ""), index=rows.index)',
        '    return pd.Series(np.where(latent, "", ""), index=rows.index)',
        ("tests/test_clmas.py",),
    ),
    Mutant(
        "wilson_at_one_sigma",
        "the IIA interval is Wilson's at z = 1 instead of the 95 % quantile",
        "mas_cli/stats.py",
        "Z95 = 1.959963984540054",
        "Z95 = 1.0",
        ("tests/test_stats.py",),
    ),
    Mutant(
        "cayley_rows_sign",
        "the orthogonal function's aligned rows solve with I + A/2 where the Cayley map has I − A/2",
        "mas_cli/alignment/maps.py",
        "torch.add(eye, skew, alpha=-0.5)",
        "torch.add(eye, skew, alpha=0.5)",
        ("tests/test_alignment_functions.py",),
    ),
    Mutant(
        "transformer_stored_value_at_tau",
        "a transformer target attends to its stored value at τ instead of the intervened state's",
        "mas_cli/continuation/transformer.py",
        "    attended = weights @ values + on_tau_weight * (v_tau - kept_value)[:, None]",
        "    attended = weights @ values + 0 * on_tau_weight * (v_tau - kept_value)[:, None]",
        ("tests/test_align_math.py",),
    ),
    Mutant(
        "transformer_key_at_tau_without_gradient",
        "no gradient reaches the alignment through the intervened state's key at τ",
        "mas_cli/continuation/transformer.py",
        "(q_tau * k_tau).sum(-1, keepdim=True), (q_later @ k_tau[..., None])[..., 0]",
        "(q_tau * k_tau.detach()).sum(-1, keepdim=True), (q_later @ k_tau.detach()[..., None])[..., 0]",
        ("tests/test_align_math.py",),
    ),
    Mutant(
        "cka_uncentred",
        "linear CKA on uncentred activations",
        "mas_cli/correlative/measures.py",
        "    x, y = x - x.mean(0), y - y.mean(0)",
        "    x, y = x, y",
        ("tests/test_similarity.py",),
    ),
    Mutant(
        "spearman_without_ranks",
        "Spearman RSA correlates the dissimilarities themselves (Pearson), not their ranks",
        "mas_cli/correlative/measures.py",
        '    if correlation == "spearman":',
        '    if correlation == "kendall":',
        ("tests/test_similarity.py",),
    ),
    Mutant(
        "similarity_rows_differ",
        "RSA and CKA compare the two models on different stimulus rows",
        "mas_cli/correlative/measures.py",
        "measures(x[idx], y[idx], zscore)",
        "measures(x[idx], y[np.sort(idx)], zscore)",
        ("tests/test_similarity.py",),
    ),
]


def run_tests(tests: tuple[str, ...], env: dict) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, lines[-1] if lines else done.stderr.strip()[-200:]


def apply(mutant: Mutant) -> str:
    path = ROOT / mutant.path
    original = path.read_text()
    if original.count(mutant.old) != 1:
        raise SystemExit(f"mutant {mutant.name}: its target occurs {original.count(mutant.old)} times in {mutant.path}")
    path.write_text(original.replace(mutant.old, mutant.new))
    return original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="mutant names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list or not chosen:
        for m in MUTANTS:
            print(f"{m.name:38} {m.path:34} {m.what}")
        raise SystemExit(0 if args.list else 2)
    with tempfile.TemporaryDirectory(prefix="mas-mutants-") as cache:
        env = {**os.environ, "MAS_TRAINED_CACHE": cache, "PYTHONDONTWRITEBYTECODE": "1"}
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        for kind in ("baseline", "baseline from the kept models"):  # the second proves the cache works,
            code, summary = run_tests(tests, env)  # so no mutant is "killed" by a broken cache
            if code != 0:
                raise SystemExit(f"the unmutated code fails its tests ({kind}: {summary}); fix that first")
            print(f"{kind}: {summary}")
        killed = survived = 0
        for mutant in chosen:
            started = time.perf_counter()
            original = apply(mutant)
            try:
                code, summary = run_tests(mutant.tests, env)
            finally:
                (ROOT / mutant.path).write_text(original)
            verdict = "killed" if code != 0 else "SURVIVED"
            killed, survived = killed + (code != 0), survived + (code == 0)
            print(f"{verdict:8} {mutant.name:38} {time.perf_counter() - started:5.0f} s  {summary}")
    print(f"mutants: {killed} killed, {survived} survived")
    raise SystemExit(1 if survived else 0)


if __name__ == "__main__":
    main()
