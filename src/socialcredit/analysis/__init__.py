"""Analysis of finished runs (DESIGN 4): metrics and fairness, explain (replay), compare,
the HTML report, and the rights audit of policies. Analyses read runs; they never change them.
"""

from socialcredit.analysis.audit import Finding, audit_policy, findings_json
from socialcredit.analysis.compare import changed_subjects, check_comparable, compare_runs
from socialcredit.analysis.explain import (
    Replay,
    explain,
    ledger_check,
    replay_group,
    replay_tables,
    stored_tables,
)
from socialcredit.analysis.metrics import (
    all_metrics,
    band_disparities,
    chilling,
    compliance,
    decisions_by_service,
    false_records_by_channel,
    gini,
    grade_shares,
    list_series,
    mean_scores,
    score_distribution,
    score_inequality,
    time_to_exit,
    top_rules,
    wrongful_decisions,
)
from socialcredit.analysis.report import build_report, write_report

__all__ = [
    "Finding",
    "Replay",
    "all_metrics",
    "audit_policy",
    "band_disparities",
    "build_report",
    "changed_subjects",
    "check_comparable",
    "chilling",
    "compare_runs",
    "compliance",
    "decisions_by_service",
    "explain",
    "false_records_by_channel",
    "findings_json",
    "gini",
    "grade_shares",
    "ledger_check",
    "list_series",
    "mean_scores",
    "replay_group",
    "replay_tables",
    "score_distribution",
    "score_inequality",
    "stored_tables",
    "time_to_exit",
    "top_rules",
    "write_report",
    "wrongful_decisions",
]
