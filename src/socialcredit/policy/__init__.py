"""The policy layer: rules as data, layered, dated, checked and compiled (DESIGN 2.6).

Policies are YAML documents: a national baseline, regional extensions and reforms.
:func:`load_policy` reads and layers one, :func:`resolve` says what it holds in a region on
a date, :func:`diff` compares two, and :func:`compile_policy` turns a baseline, the regions'
extensions and reforms into the integer :class:`PolicyTables` the kernel reads.
"""

from typing import TYPE_CHECKING, Any

from socialcredit.policy.compiler import compile_policy, day_number
from socialcredit.policy.dated import Dated
from socialcredit.policy.loading import (
    POLICIES_DIR,
    default_extension,
    load_policy,
    shipped_policies,
)
from socialcredit.policy.resolve import (
    Difference,
    ResolvedItem,
    ResolvedPolicy,
    diff,
    region_policy,
    resolve,
    resolved_summary,
    validate_policy,
)
from socialcredit.policy.schema import PolicyDocument
from socialcredit.policy.tables import MAX_LISTS, PolicyTables

__all__ = [
    "MAX_LISTS",
    "POLICIES_DIR",
    "CaseEvent",
    "CaseExpectation",
    "CaseSubject",
    "Dated",
    "Difference",
    "PolicyDocument",
    "PolicyTables",
    "ResolvedItem",
    "ResolvedPolicy",
    "RuleCase",
    "check_case",
    "compile_policy",
    "day_number",
    "default_extension",
    "diff",
    "load_cases",
    "load_policy",
    "region_policy",
    "resolve",
    "resolved_summary",
    "shipped_policies",
    "validate_policy",
]


if TYPE_CHECKING:
    from socialcredit.policy.cases import (
        CaseEvent,
        CaseExpectation,
        CaseSubject,
        RuleCase,
        check_case,
        load_cases,
    )

_CASES = {"CaseEvent", "CaseExpectation", "CaseSubject", "RuleCase", "check_case", "load_cases"}


def __getattr__(name: str) -> Any:
    """The rule-case names, imported on first use (a run does not need their models)."""
    if name in _CASES:
        from socialcredit.policy import cases

        return getattr(cases, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
