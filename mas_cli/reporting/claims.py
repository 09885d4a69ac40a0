"""The claims table: each of the papers' claims (conf/claims.yaml) judged by the rule declared for
it, from the report's own rows.

A statistic's unit is a model pair: an unordered pair of models for cross-model rows (both
directions, and every run of the same setting, averaged first), one model for within-model rows.
Over the units it has a mean and a 95 % interval (Student's t). A difference of two statistics is
paired by unit where both have the same units, else a Welch interval of the two means.

    verdict       holds | does not hold | inconclusive (the reason in `note`)
"""

from __future__ import annotations

import math
from importlib import resources

import pandas as pd
from omegaconf import OmegaConf

from mas_cli.reporting.collect import differing, grouping
from mas_cli.reporting.markdown import markdown_table
from mas_cli.stats import t_interval

COLUMNS = ["claim", "source", "statistic", "mean", "ci_lo", "ci_hi", "iia_none", "n_seeds", "rule", "verdict", "note"]
HOLDS, FAILS, OPEN = "holds", "does not hold", "inconclusive"
ROW_KEYS = ("method", "site", "variable", "k", "causal_model", "fit")  # a column each, compared by value


def load_claims() -> tuple[int, list[dict]]:
    found = OmegaConf.to_container(OmegaConf.load(resources.files("mas_cli.conf") / "claims.yaml"))
    return int(found["min_seeds"]), found["claims"]


def select(rows: pd.DataFrame, where: dict) -> pd.DataFrame:
    """The rows a statistic's `where` names."""
    if rows.empty:
        return rows
    keep = pd.Series(True, index=rows.index)
    for key in ROW_KEYS:
        if key in where:
            wanted = where[key]
            if isinstance(wanted, (int, float)):  # k: compared as a number (a column may be read as floats)
                keep &= pd.to_numeric(rows[key], errors="coerce") == wanted
            else:
                keep &= rows[key].astype(str) == str(wanted)
    if "scope" in where and "within" in rows:
        keep &= rows.within == (where["scope"] == "within")
    if "archs" in where:  # task/arch, the task `count` where the claim names none
        wanted = sorted(a if "/" in a else f"count/{a}" for a in where["archs"].split("~"))
        src, trg = (rows[side].str.rsplit("/", n=1).str[0] for side in ("src", "trg"))  # task/arch/seed -> task/arch
        keep &= pd.Series([sorted(p) == wanted for p in zip(src, trg)], index=rows.index)
    if where.get("into") == "last":
        keep &= rows.trg == rows.models.str.split("+").str[-1]
    return rows[keep]


def per_unit(rows: pd.DataFrame, value: str = "iia") -> pd.DataFrame:
    """One value per model pair (unordered; one model for within-model rows), and its chance level."""
    unit = [" ~ ".join(sorted({s, t})) for s, t in zip(rows.src, rows.trg)]
    none = rows["iia_none"] if "iia_none" in rows else float("nan")
    return rows.assign(unit=unit, none=none).groupby("unit").agg(value=(value, "mean"), none=("none", "mean"))


def _welch(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return a.mean() - b.mean(), a.mean() - b.mean()
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * se
    return a.mean() - b.mean() - half, a.mean() - b.mean() + half


SMOKE = "smoke budget: numbers that test the software only"


def _undertrained(rows: pd.DataFrame) -> str | None:
    """A model below its training criterion behind these rows (files written before the
    similarity rows said so count as trained)."""
    flags = [rows[c].astype(str) == "False" for c in ("src_trained", "trg_trained") if c in rows]
    if any(flag.any() for flag in flags):
        return "a model below its training criterion: numbers, but no verdict"
    return None


def _trouble(rows: pd.DataFrame) -> str | None:
    """Why these rows cannot give a statistic, or None."""
    if rows.empty:
        return "no rows in this root"
    mixed = differing(rows, [c for c in grouping() if c in rows and c not in ("variable",)])
    if mixed:
        return f"rows of several settings match (they differ in {', '.join(mixed)}); name one"
    return None


def gradient(spec: dict, items: pd.DataFrame) -> dict:
    """Graded symbols: per model pair, IIA on the items whose value (`by`: the swapped-in value
    `after`, or `distance` = |original − swapped|) lies above the median of the distinct values
    the selected items hold, minus IIA on the rest. Negative: IIA falls as the value grows."""
    if not items.empty:
        items = items.assign(within=items.src == items.trg)
    rows = select(items, spec["where"]) if not items.empty else items
    trouble = _trouble(rows)
    if trouble:
        return _summary(pd.Series(dtype=float), float("nan"), trouble, seen=not rows.empty)
    value = rows.after if spec["by"] == "after" else (rows.before - rows.after).abs()
    upper = value > value.drop_duplicates().median()
    unit = pd.Series([" ~ ".join(sorted({s, t})) for s, t in zip(rows.src, rows.trg)], index=rows.index)
    right = rows.correct.astype(float)
    found = right[upper].groupby(unit[upper]).mean() - right[~upper].groupby(unit[~upper]).mean()
    smoke = "budget" in rows and (rows.budget.astype(str) == "smoke").any()
    return _summary(found, float("nan"), SMOKE if smoke else None)


def statistic(spec: dict, val: pd.DataFrame, sim: pd.DataFrame, items: pd.DataFrame | None = None) -> dict:
    """mean, ci_lo, ci_hi, iia_none, n_seeds and a note (why no verdict is possible, if so)."""
    kind = spec["of"]
    if kind == "gradient":
        return gradient(spec, pd.DataFrame() if items is None else items)
    if kind in ("cka", "rsa"):
        measure = "cka" if kind == "cka" else "rsa_cosine_spearman"
        rows = select(sim[sim.measure == measure], spec["where"]) if not sim.empty else sim
        if rows.empty:
            return _summary(pd.Series(dtype=float), float("nan"), "no RSA/CKA rows in this root", seen=False)
        return _summary(per_unit(rows, "value").value, float("nan"), _undertrained(rows))
    parts = {name: select(val, spec[name] if kind != "iia" else spec["where"]) for name in ("a", "b", "c")[: _n(kind)]}
    trouble = next((f"{n}: {t}" for n, r in parts.items() if (t := _trouble(r))), None)
    if trouble:
        seen = any(not r.empty for r in parts.values())
        return _summary(pd.Series(dtype=float), float("nan"), trouble.removeprefix("a: "), seen=seen)
    smoke = any("budget" in r and (r.budget.astype(str) == "smoke").any() for r in parts.values())
    undertrained = next((u for r in parts.values() if (u := _undertrained(r))), None)
    found = _computed(kind, {name: per_unit(r) for name, r in parts.items()})
    note = SMOKE if smoke else undertrained
    return found | {"note": note} if note else found  # the numbers, but never a verdict


def _computed(kind: str, units: dict[str, pd.DataFrame]) -> dict:
    a = units["a"]
    if kind == "iia":
        return _summary(a.value, a.none.mean(), None)
    b = units["b"]
    common = a.index.intersection(b.index)
    if kind == "difference" and len(common) < min(len(a), len(b)):  # other units: unpaired
        low, high = _welch(a.value, b.value)
        return {**_summary(a.value, float("nan"), None), "mean": a.value.mean() - b.value.mean(), "ci_lo": low,
                "ci_hi": high, "n_seeds": min(len(a), len(b))}  # fmt: skip
    if kind == "difference":
        return _summary(a.value[common] - b.value[common], float("nan"), None)
    c = units["c"]
    common = common.intersection(c.index)
    gap = c.value[common] - b.value[common]
    return _summary((a.value[common] - b.value[common]) / gap.where(gap > 0), float("nan"), None)


def _n(kind: str) -> int:
    return {"iia": 1, "difference": 2, "gap_closed": 3}[kind]


def _summary(values: pd.Series, none: float, note: str | None, seen: bool = True) -> dict:
    """`seen`: the root holds rows of this statistic (of some of its parts, for a comparison)."""
    values = values.dropna()
    low, high = t_interval(values)
    mean = values.mean() if len(values) else float("nan")
    return {"mean": mean, "ci_lo": low, "ci_hi": high, "iia_none": none, "n_seeds": len(values), "note": note,
            "seen": seen}  # fmt: skip


def verdict(found: dict, rule: dict, min_seeds: int) -> tuple[str, str | None]:
    """(verdict, reason when inconclusive) of a statistic under its rule."""
    if found["note"]:
        return OPEN, found["note"]
    if found["n_seeds"] < min_seeds:
        return OPEN, f"{found['n_seeds']} model pair(s); a verdict needs {min_seeds}"
    low, high = found["ci_lo"], found["ci_hi"]
    if "at_least" in rule:
        holds, fails = low >= rule["at_least"], high < rule["at_least"]
    elif "at_most" in rule:
        holds, fails = high <= rule["at_most"], low > rule["at_most"]
    else:
        margin = rule["within"]
        holds, fails = -margin <= low and high <= margin, low > margin or high < -margin
    if holds and "above_none" in rule and not found["mean"] - found["iia_none"] >= rule["above_none"]:
        return FAILS, f"only {found['mean'] - found['iia_none']:.3f} above its chance level"
    if holds:
        return HOLDS, None
    return (FAILS, None) if fails else (OPEN, "the interval straddles the rule's boundary")


def rule_text(rule: dict) -> str:
    said = [f"{key.replace('_', ' ')} {value}" for key, value in rule.items()]
    return ", ".join(said)


def describe(spec: dict) -> str:
    def one(where: dict) -> str:
        return " ".join(f"{k}={v}" for k, v in where.items())

    if spec["of"] in ("iia", "cka", "rsa"):
        return f"{spec['of']}: {one(spec['where'])}"
    if spec["of"] == "gradient":
        return f"gradient by {spec['by']}: {one(spec['where'])}"
    parts = " | ".join(f"{n}: {one(spec[n])}" for n in ("a", "b", "c")[: _n(spec["of"])])
    return f"{spec['of']} ({parts})"


def claims_table(val: pd.DataFrame, sim: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim of conf/claims.yaml (COLUMNS, and `seen`: whether the root holds rows of
    it; no claims file is written when it holds none), judged on these rows (validation IIA rows,
    RSA/CKA rows, and the validation items for the graded-symbol claims)."""
    min_seeds, claims = load_claims()
    out = []
    for claim in claims:
        found = statistic(claim["statistic"], val, sim, items)
        decided, reason = verdict(found, claim["rule"], min_seeds)
        out.append(
            {"claim": f"{claim['id']}: {claim['claim']}", "source": claim["source"],
             "statistic": describe(claim["statistic"]), **{k: found[k] for k in COLUMNS[3:8]},
             "rule": rule_text(claim["rule"]), "verdict": decided, "note": reason or "", "seen": found["seen"]}
        )  # fmt: skip
    return pd.DataFrame(out, columns=[*COLUMNS, "seen"])


def claims_markdown(table: pd.DataFrame) -> str:
    """claims.md: one row per claim with its numbers, rule and verdict."""
    return "\n".join(["# The papers' claims, judged by rules declared before the run", "", INTRO, "",
                      markdown_table(shown(table)), ""])  # fmt: skip


INTRO = (
    "Each rule is in conf/claims.yaml with the paper's words it was written from. A statistic's unit "
    "is a model pair (both directions averaged); its 95 % interval is Student's t over the pairs. "
    "A verdict needs the interval on one side of the rule's boundary and at least three model pairs; "
    "smoke-budget numbers never give one. Read every IIA beside its chance level (IIA none)."
)


def _number(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.3f}"


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table as the report shows it (claims.csv keeps every column as it is)."""
    interval = [("—" if pd.isna(lo) else f"{lo:.3f} – {hi:.3f}") for lo, hi in zip(table.ci_lo, table.ci_hi)]
    return pd.DataFrame(
        {"claim": table.claim, "source": table.source, "mean": table["mean"].map(_number), "95 % CI": interval,
         "IIA none": table.iia_none.map(_number), "pairs": table.n_seeds, "rule": table.rule,
         "verdict": table.verdict, "note": table.note}
    )  # fmt: skip
