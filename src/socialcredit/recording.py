"""From the engine's counters and events to tables: ``daily``, ``records``, ``ledger``,
``list_events``, ``decisions``, ``restrictions``, ``snapshots``, and the manifest's census.

Pure conversion: it turns integer arrays into Arrow tables with the names of the policy and
the catalogue; the recorder (``socialcredit.recorder``) writes them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa

from socialcredit import arrow
from socialcredit.kernel import layout as LY

EXIT_COLS = ["term", "obligation", "repair", "appeal", "grade", "moved", "policy"]


def column_names(model: Any) -> list[str]:
    """Daily-table names of the counter columns, in counter order."""
    pol = model.policy
    names: list[str] = []
    for fam, j in model.packed.metric_columns:
        if fam == "acts":
            names.append(f"acts_{pol.act_names[j]}")
        elif fam in ("records_true", "records_false", "records_corroborating"):
            names.append(f"{fam}_{pol.channel_names[j]}")
        elif fam in ("list_enter", "list_extend", "list_exit"):
            names.append(f"{fam.split('_')[1]}_{pol.list_names[j]}")
        elif fam == "exit_reason":
            names.append(f"exits_{EXIT_COLS[j]}")
        elif fam == "decisions":
            names.append(f"{LY.OUTCOME_NAMES[j % 3]}_{pol.service_names[j // 3]}")
        elif fam == "wrongful":
            names.append(f"wrongful_{pol.service_names[j]}")
        elif fam == "measure_fired":
            names.append(f"measure_{pol.measure_names[j]}")
        elif fam == "grade_count":
            names.append("grade_none" if j == LY.NO_GRADE else f"grade_{j}")
        elif fam in ("listed", "listed_false"):
            names.append(f"{fam}_{pol.list_names[j]}")
        else:
            names.append(fam)
    return names


def stock_mask(model: Any) -> np.ndarray:
    return np.array([fam in LY.STOCK_METRICS for fam, _ in model.packed.metric_columns])


class DailyCollector:
    """Accumulates stocks from daily deltas, buffers daily rows, and sums the census."""

    def __init__(self, model: Any):
        self.model = model
        self.names = column_names(model)
        self.stock = stock_mask(model)
        self.level = np.zeros((model.n_cells, model.n_metrics), dtype=np.int64)
        self.census = np.zeros(model.n_metrics, dtype=np.int64)
        self.rows: list[tuple[int, np.ndarray]] = []  # (day, counts[column, cell])
        self.active: np.ndarray | None = None
        subj = model.packed.MO[LY.M_SUBJECTS]
        self._subjects_col = int(subj)
        self._throttled_col = int(model.packed.MO[LY.M_THROTTLED])
        self.throttled_days = 0  # subject-days throttled over the reported days

    def add(self, t: int, counts: np.ndarray) -> None:
        m = self.model
        self.level[:, self.stock] += counts[:, self.stock]
        if self.active is None or t == 0:
            self.active = np.nonzero(self.level[:, self._subjects_col] > 0)[0]
        if t < m.burn_in:
            return
        self.census += np.where(self.stock, 0, counts.sum(axis=0))
        self.throttled_days += int(self.level[:, self._throttled_col].sum())
        row = np.where(self.stock[None, :], self.level, counts)[self.active]
        # kept column by column: the table is built from columns, and gathering each column
        # from rows at the end would read the whole buffer once per column
        self.rows.append((int(m.first_day + t), np.ascontiguousarray(row.T)))

    def take(self) -> pa.Table | None:
        """The buffered days as a table (and forget them)."""
        if not self.rows:
            return None
        m = self.model
        assert self.active is not None
        cells = self.active
        nd = len(self.rows)
        days = np.repeat(np.array([d for d, _ in self.rows], dtype=np.int32), len(cells))
        data = np.concatenate([r for _, r in self.rows], axis=1)  # [column, row]
        self.rows = []
        per_region = LY.CELLS_PER_REGION
        region = cells // per_region
        kind = (cells % per_region) // (per_region // 2)
        band = cells % (per_region // 2)
        region_col = np.tile(region, nd)
        kind_col = np.tile(kind, nd)
        band_col = np.tile(band, nd)
        citizen = kind_col == 0
        cols: dict[str, pa.Array] = {
            "day": arrow.array(days, pa.date32()),
            "region": arrow.dictionary(region_col, m.policy.region_names),
            "kind": arrow.dictionary(kind_col, ["citizen", "business"]),
            "income": arrow.array(np.where(citizen, band_col // 2, 0).astype(np.int8),
                               mask=~citizen),
            "urban": arrow.array(np.where(citizen, band_col % 2, 0).astype(bool), mask=~citizen),
            "size": arrow.array(band_col.astype(np.int8), mask=citizen),
        }
        for k, name in enumerate(self.names):
            cols[name] = arrow.array(data[k])
        return arrow.table(cols)

    def census_dict(self) -> dict[str, Any]:
        """How many times each mechanism fired over the reported days (DESIGN 8)."""
        out: dict[str, Any] = {}
        for k, (fam, _) in enumerate(self.model.packed.metric_columns):
            if fam in LY.STOCK_METRICS:
                continue
            name = self.names[k]
            if name == fam:
                out[fam] = int(self.census[k])
            else:
                out.setdefault(fam, {})[name[len(_prefix(fam)):]] = int(self.census[k])
        out["throttled_days"] = self.throttled_days
        return out

    def state(self) -> dict[str, np.ndarray]:
        assert self.active is not None
        return {"level": self.level, "census": self.census, "active": self.active,
                "throttled_days": np.array([self.throttled_days], np.int64)}

    def load_state(self, st: dict[str, np.ndarray]) -> None:
        self.level = st["level"].copy()
        self.census = st["census"].copy()
        self.active = st["active"].copy()
        self.throttled_days = int(st["throttled_days"][0]) if "throttled_days" in st else 0


def _prefix(fam: str) -> str:
    return {
        "acts": "acts_", "records_true": "records_true_", "records_false": "records_false_",
        "records_corroborating": "records_corroborating_",
        "list_enter": "enter_", "list_extend": "extend_", "list_exit": "exit_",
        "exit_reason": "exits_", "decisions": "", "wrongful": "wrongful_",
        "measure_fired": "measure_",
    }.get(fam, fam + "_")  # fmt: skip




def rule_label(model: Any, rule: int) -> str:
    if rule >= 0:
        return str(model.policy.rule_names[rule])
    return {LY.RULE_EXPIRY: "expiry", LY.RULE_APPEAL: "appeal reversal",
            LY.RULE_START: "scoring starts", -1: "unnamed rule"}.get(rule, "unknown")


SCHEMAS = {
    "daily": None,  # wide; its schema comes from the first batch
    "records": pa.schema([("day", pa.date32()), ("subject_id", pa.int64()),
                          ("act", pa.dictionary(pa.int16(), pa.string())),
                          ("channel", pa.dictionary(pa.int16(), pa.string())),
                          ("true_record", pa.bool_()), ("delayed", pa.bool_()),
                          ("corroborating", pa.bool_())]),
    "ledger": pa.schema([("day", pa.date32()), ("subject_id", pa.int64()),
                         ("rule", pa.dictionary(pa.int16(), pa.string())),
                         ("points", pa.int32()), ("score", pa.int32()),
                         ("false_record", pa.bool_())]),
    "list_events": pa.schema([("day", pa.date32()), ("subject_id", pa.int64()),
                              ("list", pa.dictionary(pa.int16(), pa.string())),
                              ("event", pa.dictionary(pa.int16(), pa.string())),
                              ("reason", pa.dictionary(pa.int16(), pa.string())),
                              ("false_caused", pa.bool_())]),
    "decisions": pa.schema([("day", pa.date32()), ("subject_id", pa.int64()),
                            ("service", pa.dictionary(pa.int16(), pa.string())),
                            ("outcome", pa.dictionary(pa.int16(), pa.string())),
                            ("measure", pa.dictionary(pa.int16(), pa.string())),
                            ("wrongful", pa.bool_()), ("throttled", pa.bool_())]),
    "restrictions": pa.schema([("day", pa.date32()), ("subject_id", pa.int64()),
                               ("service", pa.dictionary(pa.int16(), pa.string())),
                               ("event", pa.dictionary(pa.int16(), pa.string())),
                               ("measure", pa.dictionary(pa.int16(), pa.string())),
                               ("wrongful", pa.bool_())]),
    "snapshots": pa.schema([("day", pa.date32()), ("subject_id", pa.int64()),
                            ("score", pa.int16()), ("grade", pa.dictionary(pa.int16(), pa.string())),
                            ("lists", pa.uint8()), ("false_lists", pa.uint8()),
                            ("region", pa.dictionary(pa.int16(), pa.string())),
                            ("kind", pa.dictionary(pa.int16(), pa.string())),
                            ("income", pa.int8()), ("education", pa.int8()), ("age", pa.int8()),
                            ("urban", pa.bool_()), ("size", pa.int8())]),
}


def event_tables(model: Any, day: int, ev: np.ndarray) -> dict[str, pa.Table]:
    """Split one day's events into the ledger tables."""
    pol = model.policy
    out: dict[str, pa.Table] = {}
    typ = ev[:, 0]

    def base(sel: np.ndarray) -> dict[str, pa.Array]:
        n = int(sel.sum())
        return {"day": arrow.array(np.full(n, day, np.int32), pa.date32()),
                "subject_id": arrow.array(ev[sel, 1].astype(np.int64))}

    sel = typ == LY.EV_RECORD
    if sel.any():
        cols = base(sel)
        cols["act"] = arrow.dictionary(ev[sel, 2], pol.act_names)
        cols["channel"] = arrow.dictionary(ev[sel, 3], pol.channel_names)
        cols["true_record"] = arrow.array(ev[sel, 4] == 1)
        cols["delayed"] = arrow.array(ev[sel, 5] == 1)
        cols["corroborating"] = arrow.array(ev[sel, 5] == 2)
        out["records"] = arrow.table(cols, schema=SCHEMAS["records"])
    sel = typ == LY.EV_LEDGER
    if sel.any():
        cols = base(sel)
        rules = ev[sel, 2]
        labels = [rule_label(model, int(r)) for r in range(-4, len(pol.rule_names))]
        cols["rule"] = arrow.dictionary(rules + 4, labels)
        cols["points"] = arrow.array(ev[sel, 3].astype(np.int32))
        cols["score"] = arrow.array(ev[sel, 4].astype(np.int32))
        cols["false_record"] = arrow.array(ev[sel, 5] == 1)
        out["ledger"] = arrow.table(cols, schema=SCHEMAS["ledger"])
    sel = typ == LY.EV_LIST
    if sel.any():
        cols = base(sel)
        cols["list"] = arrow.dictionary(ev[sel, 2], pol.list_names)
        cols["event"] = arrow.dictionary(ev[sel, 3], ["enter", "extend", "exit"])
        reasons = ev[sel, 4]
        labels = reason_labels(model)
        cols["reason"] = arrow.dictionary(np.where(reasons >= 0, reasons + 7, -reasons - 10), labels)
        cols["false_caused"] = arrow.array(ev[sel, 5] == 1)
        out["list_events"] = arrow.table(cols, schema=SCHEMAS["list_events"])
    sel = typ == LY.EV_DECISION
    if sel.any():
        cols = base(sel)
        cols["service"] = arrow.dictionary(ev[sel, 2], pol.service_names)
        cols["outcome"] = arrow.dictionary(ev[sel, 3], LY.OUTCOME_NAMES)
        meas = ev[sel, 4]
        cols["measure"] = arrow.dictionary(np.maximum(meas, 0),
                                           pol.measure_names or [""], meas < 0)
        cols["wrongful"] = arrow.array(ev[sel, 5] == 1)
        throttles = np.asarray(pol.measure_effect, np.int64) == LY.EFFECT_THROTTLE
        cols["throttled"] = arrow.array((meas >= 0) & throttles[np.maximum(meas, 0)]
                                     if len(throttles) else np.zeros(len(meas), bool))
        out["decisions"] = arrow.table(cols, schema=SCHEMAS["decisions"])
    sel = typ == LY.EV_RESTRICTION
    if sel.any():
        cols = base(sel)
        cols["service"] = arrow.dictionary(ev[sel, 2], pol.service_names)
        cols["event"] = arrow.dictionary(ev[sel, 3], ["end", "start"])
        meas = ev[sel, 4]
        cols["measure"] = arrow.dictionary(np.maximum(meas, 0),
                                           pol.measure_names or [""], meas < 0)
        cols["wrongful"] = arrow.array(ev[sel, 5] == 1)
        out["restrictions"] = arrow.table(cols, schema=SCHEMAS["restrictions"])
    return out


def reason_labels(model: Any) -> list[str]:
    """Labels of list-event reasons: exit reasons (codes -10..-16), then rules."""
    exits = [LY.EXIT_NAMES[c] for c in range(-10, -17, -1)]
    return exits + [rule_label(model, r) for r in range(len(model.policy.rule_names))]


def snapshot_table(model: Any, day: int, subject_ids: np.ndarray, state: dict[str, np.ndarray],
                   parity: int) -> pa.Table:
    """Every subject's score, grade and list flags at the end of a day."""
    pol = model.policy
    pub = state["pub"][parity].astype(np.int64)
    grade = (pub >> 16) & 15
    st = state["st"]
    bands = st["bands"].astype(np.int64)
    region = st["region"].astype(np.int64)
    citizen = subject_ids < model.n_citizens
    n = subject_ids.shape[0]
    kind = (~citizen).astype(np.int64)
    return arrow.table({
        "day": arrow.array(np.full(n, day, np.int32), pa.date32()),
        "subject_id": arrow.array(subject_ids.astype(np.int64)),
        "score": arrow.array(np.where((pub >> 29) & 1, st["score"], 0).astype(np.int16)),
        "grade": arrow.dictionary((region * 2 + kind) * 16 + grade, grade_labels(model)),
        "lists": arrow.array((pub & 255).astype(np.uint8)),
        "false_lists": arrow.array(np.where(pub & 255, (pub >> 8) & 255, 0).astype(np.uint8)),
        "region": arrow.dictionary(region, pol.region_names),
        "kind": arrow.dictionary(kind, ["citizen", "business"]),
        "income": arrow.array(np.where(citizen, bands & 3, 0).astype(np.int8), mask=~citizen),
        "education": arrow.array(((bands >> 2) & 3).astype(np.int8), mask=~citizen),
        "age": arrow.array(((bands >> 4) & 3).astype(np.int8), mask=~citizen),
        "urban": arrow.array(((bands >> 6) & 1).astype(bool), mask=~citizen),
        "size": arrow.array((bands & 3).astype(np.int8), mask=citizen),
    }, schema=SCHEMAS["snapshots"])


def grade_labels(model: Any) -> list[str]:
    """Grade names indexed by ``(region * 2 + kind) * 16 + grade``."""
    labels: list[str] = []
    for r in range(len(model.policy.region_names)):
        for k in range(2):
            names = list(model.policy.grade_names[r][k]) if model.policy.grade_names else []
            labels.extend(names[g] if g < len(names) else "none" for g in range(16))
    return labels


def date_of(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))
