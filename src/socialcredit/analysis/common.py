"""What every analysis needs from a finished run: the run itself, its scenario rebuilt from
the manifest, its compiled policy tables, and (for ``explain``) the whole model.

Analyses never mutate a run (DESIGN 4): they read the manifest and the tables, and rebuild
from the manifest only what the run did not store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialcredit.errors import UserError

if TYPE_CHECKING:
    from socialcredit.engine import Model
    from socialcredit.policy.tables import PolicyTables
    from socialcredit.scenario import Scenario
    from socialcredit.store import Run

EPOCH = dt.date(1970, 1, 1)


def open_run(run: str | Path | Run) -> Run:
    """A :class:`~socialcredit.store.Run` from a path (or the run itself)."""
    from socialcredit.store import Run

    if isinstance(run, Run):
        return run
    return Run.open(run)


def check_trusted(run: Run, what: str) -> None:
    """Refuse a run whose manifest ``what`` (an explanation, a report) cannot rest on.

    Both rebuild the run's policy (and ``explain`` its model) with this version of the code,
    and read the census: a run made by another version, or whose manifest lacks its
    census, would be described wrongly without a word, so it is refused with one sentence
    saying which."""
    from socialcredit import __version__

    m = run.manifest
    made_by = m.get("version")
    if made_by != __version__:
        made = f"socialcredit {made_by}" if isinstance(made_by, str) else "an unknown version"
        raise UserError(
            f"the run {run.path} was made by {made}, but this is socialcredit {__version__}; "
            f"{what} rebuilds the run's policy with this version, so run it with the version "
            "that made the run (or run the scenario again)"
        )
    if not isinstance(m.get("census"), dict) or not m["census"]:
        raise UserError(f"the manifest of the run {run.path} has no census, so {what} cannot "
                        "be trusted; run the scenario again")


def date_of(day: int) -> dt.date:
    """The date of an absolute day number (days since 1970-01-01)."""
    return EPOCH + dt.timedelta(days=int(day))


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def scenario_of(run: Run) -> Scenario:
    """The run's scenario as it was run (regions already rescaled), from its manifest."""
    from socialcredit.scenario import Scenario

    data = run.manifest.get("scenario")
    if not isinstance(data, dict):
        raise UserError(f"the manifest of the run {run.path} holds no scenario")
    return Scenario.from_dict(data, path=run.path / "manifest.json")


def calendar_of(run: Run) -> tuple[dt.date, int, int]:
    """(start, reported days, burn-in days) of a run."""
    cal = run.manifest.get("calendar") or {}
    try:
        return (dt.date.fromisoformat(cal["start"]), int(cal["days"]),
                int(cal.get("burn_in_days", 0)))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"the manifest of the run {run.path} has no valid calendar") from None


def policy_tables(run: Run) -> PolicyTables:
    """The run's policy compiled again from its scenario (no population is generated).

    Cached per run: the report and the metrics ask for it several times."""
    cached = getattr(run, "_analysis_policy", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from socialcredit.catalogue import load_catalogue
    from socialcredit.policy import compile_policy

    sc = scenario_of(run)
    start, days, burn = calendar_of(run)
    tables = compile_policy(sc.policy, [(r.id, r.extension) for r in sc.regions],
                            list(sc.reforms), start - dt.timedelta(days=burn),
                            start + dt.timedelta(days=days - 1), load_catalogue())
    run._analysis_policy = tables  # type: ignore[attr-defined]
    return tables


def behaviour_tables(run: Run) -> dict[str, Any]:
    """The run's behaviour tables (feedback factors and rates), rebuilt from its scenario."""
    cached = getattr(run, "_analysis_behaviour", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from socialcredit.behaviour import build_behaviour
    from socialcredit.catalogue import load_catalogue

    tables, _ = build_behaviour(load_catalogue(), scenario_of(run), policy_tables(run))
    run._analysis_behaviour = tables  # type: ignore[attr-defined]
    return tables


def build_run_model(run: Run) -> Model:
    """The run's model (scenario, policy, population) rebuilt from the manifest.

    Refuses with a sentence when the rebuilt model is not the one that made the run (the
    policy files, the catalogue or the population generator changed since), because a
    replay of another model would tell another story."""
    from socialcredit.engine import build_model
    from socialcredit.run import policy_digest

    sc = scenario_of(run)
    _, days, _ = calendar_of(run)
    seed = run.manifest.get("seed")
    if not isinstance(seed, int):
        raise UserError(f"the manifest of the run {run.path} has no seed")
    model = build_model(sc, seed=seed, days=days)
    pop = run.manifest.get("population") or {}
    if (model.n_citizens, model.n_businesses) != (pop.get("citizens"), pop.get("businesses")):
        raise UserError(
            f"the run {run.path} cannot be replayed: its scenario now generates "
            f"{model.n_citizens} citizens and {model.n_businesses} businesses, the run had "
            f"{pop.get('citizens')} and {pop.get('businesses')}"
        )
    want = (run.manifest.get("policy") or {}).get("hash")
    if want and policy_digest(model) != want:
        raise UserError(
            f"the run {run.path} cannot be replayed: its policy or the catalogue changed "
            "since it was made (the policy hash differs)"
        )
    return model


def grade_name(policy: PolicyTables, region: int, kind: int, grade: int) -> str:
    """The name of grade index ``grade`` of a region and kind ("none" when not graded)."""
    names = policy.grade_names[region][kind] if policy.grade_names else []
    return str(names[grade]) if 0 <= grade < len(names) else "none"


def rule_references(run: Run) -> dict[str, str]:
    """Rule name -> reference, from the manifest."""
    out: dict[str, str] = {}
    for r in (run.manifest.get("policy") or {}).get("rules") or []:
        if isinstance(r, dict) and "name" in r:
            out.setdefault(str(r["name"]), str(r.get("reference") or ""))
    return out


def has_ledger(run: Run) -> bool:
    """Whether the run stored its per-subject tables (``--ledger``)."""
    return all(run.has(t) for t in ("records", "ledger", "list_events", "decisions"))
