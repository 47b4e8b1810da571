"""What the GPU backend puts on the device, in bytes, and the check made before any work.

Kept apart from ``kernel.gpu`` so that it imports neither numba-cuda nor a CUDA driver: the
CPU install, the docs and ``make bench`` can size a run without the ``[gpu]`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from socialcredit.errors import UserError

#: Bytes of one subject's state record (``kernel.step.STATE_DTYPE``).
STATE_RECORD_BYTES = 36
#: Bytes of one subject's public words (today's and tomorrow's uint32).
PUBLIC_BYTES = 8
#: Rows of the event buffer (6 int32 each) when events are recorded: 2**24 rows, 384 MiB.
EVENT_CAPACITY = 1 << 24
#: Most events one subject emits in one day (``kernel.cpu.EVENT_MARGIN``).
EVENT_MARGIN = 96
EVENT_ROW_BYTES = 24
#: Device memory kept free beyond the plan (kernel images, the driver's own allocations).
HEADROOM = 256 << 20
#: Counter slots before the counters proper (``kernel.step.CNT_BASE``).
CNT_BASE = 2
N_CTX = 18


@dataclass(frozen=True)
class MemoryPlan:
    """What the backend puts on the device, in bytes."""

    subjects: int
    businesses: int
    state: int  # 36-byte records
    public: int  # two uint32 public words per subject
    representatives: int  # uint32 per business
    tables: int  # packed policy tables, population table, day context
    counters: int  # counter copies and the reduced row
    events: int  # the event buffer (0 without events)

    @property
    def total(self) -> int:
        return (self.state + self.public + self.representatives + self.tables + self.counters
                + self.events)

    def rows(self) -> list[tuple[str, int]]:
        return [(f"state records ({STATE_RECORD_BYTES} B per subject)", self.state),
                (f"public words ({PUBLIC_BYTES} B per subject)", self.public),
                ("representatives (4 B per business)", self.representatives),
                ("policy and population tables", self.tables),
                ("counters", self.counters), ("event buffer", self.events)]


def event_rows(n: int, emit: int, capacity: int = EVENT_CAPACITY) -> int:
    """Rows of the event buffer: the worst case of all n subjects, capped at ``capacity``."""
    if not emit:
        return 1
    return max(EVENT_MARGIN, min(int(capacity), max(1, n) * EVENT_MARGIN))


def memory_plan(model: Any, shard: Any, *, emit: int = 0, copies: int = 32,
                event_capacity: int = EVENT_CAPACITY) -> MemoryPlan:
    """The device memory a shard of a model needs on the GPU backend.

    Only the shard's size depends on the population: a small model of the same scenario
    gives the tables of a full-scale one."""
    nb = shard.b_hi - shard.b_lo
    n = shard.size
    ncol = CNT_BASE + model.n_cells * model.n_metrics
    copies = 1 if emit else copies
    return MemoryPlan(
        subjects=n,
        businesses=nb,
        state=n * STATE_RECORD_BYTES,
        public=n * PUBLIC_BYTES,
        representatives=nb * 4,
        tables=int(model.packed.P.nbytes) + int(model.population.popt.nbytes) + N_CTX * 8,
        counters=(copies + 1) * ncol * 8,
        events=event_rows(n, emit, event_capacity) * EVENT_ROW_BYTES if emit else 0,
    )


def _gb(x: float) -> str:
    return f"{x / 1e9:,.2f} GB"


def check_memory(plan: MemoryPlan, free: float) -> None:
    """Raise a UserError when the plan (plus headroom) does not fit the free memory."""
    need = plan.total + HEADROOM
    if need > free:
        raise UserError(
            f"this run needs {_gb(need)} of GPU memory ({plan.subjects:,} subjects at "
            f"{STATE_RECORD_BYTES + PUBLIC_BYTES} bytes of state each, plus tables, counters, "
            f"event buffer and {_gb(HEADROOM)} of headroom) but the GPU has {_gb(free)} free; "
            f"use fewer --citizens or --backend cpu")


def china_full_scale_plan(*, emit: int = 0) -> dict[str, Any]:
    """The memory plan of the ``china`` scenario at full scale (every region at its census
    population), as a dict for docs and benchmarks. Builds only a small model of the same
    scenario for its tables; no per-subject work."""
    from socialcredit.engine import Shard, build_model
    from socialcredit.population import layout
    from socialcredit.scenario import Scenario

    sc = Scenario.load("china")
    people = int(sum(sc._people(r) for r in sc.regions))
    lay = layout(sc.rescaled(people))
    small = build_model(sc, citizens=8 * len(sc.regions), days=1)
    C, B = lay.n_citizens, lay.n_businesses
    plan = memory_plan(small, Shard(0, C, 0, B), emit=emit)
    return {
        "citizens": C,
        "businesses": B,
        "subjects": C + B,
        "state_bytes_per_subject": STATE_RECORD_BYTES + PUBLIC_BYTES,
        "bytes_per_citizen": (plan.state + plan.public + plan.representatives) / C,
        "rows": plan.rows(),
        "total_bytes": plan.total,
        "with_headroom_bytes": plan.total + HEADROOM,
    }
