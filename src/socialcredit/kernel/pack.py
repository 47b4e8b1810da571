"""Packing named tables into the one int64 array the kernels read (see ``layout``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from socialcredit.kernel.layout import (
    D_A,
    D_B,
    D_C,
    D_CELLS,
    D_E,
    D_G,
    D_H,
    D_L,
    D_M,
    D_P,
    D_R,
    D_S,
    D_T,
    METRICS,
    N_DIMS,
    OFF_MO,
    OFF_O,
    TABLE_BASE,
    TABLES,
    metric_sizes,
)


@dataclass
class Packed:
    """The kernels' view of a run: one int64 array ``P`` (header, then every table).

    ``D``, ``O`` and ``MO`` are copies of the header's parts for Python code."""

    P: np.ndarray
    O: np.ndarray  # noqa: E741  (the offsets, as in the kernels)
    D: np.ndarray
    MO: np.ndarray
    metric_columns: list[tuple[str, int]]  # (family, column within family) per counter


def pack(tables: dict[str, np.ndarray], dims: dict[str, int]) -> Packed:
    """Pack every table named in ``layout.TABLES`` (all must be present) into one array."""
    missing = [name for name in TABLES if name not in tables]
    if missing:
        raise ValueError(f"tables missing from the pack: {', '.join(missing)}")
    offsets = np.zeros(len(TABLES), dtype=np.int64)
    parts = []
    pos = TABLE_BASE
    for k, name in enumerate(TABLES):
        arr = np.ascontiguousarray(tables[name]).reshape(-1)
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() >= 2**63:
            raise ValueError(f"table {name} holds a value too large for int64")
        offsets[k] = pos
        parts.append(arr.astype(np.int64))
        pos += arr.size
    D = np.zeros(N_DIMS, dtype=np.int64)
    for key, idx in dict(E=D_E, R=D_R, A=D_A, H=D_H, S=D_S, L=D_L, M=D_M, G=D_G, P=D_P, T=D_T,
                         C=D_C, B=D_B, CELLS=D_CELLS).items():
        D[idx] = int(dims.get(key, 0))
    sizes = metric_sizes(A=int(D[D_A]), H=int(D[D_H]), S=int(D[D_S]), L=int(D[D_L]),
                         M=int(D[D_M]), G=int(D[D_G]))
    MO = np.zeros(len(METRICS) + 1, dtype=np.int64)
    columns: list[tuple[str, int]] = []
    for k, name in enumerate(METRICS):
        MO[k] = len(columns)
        columns.extend((name, j) for j in range(sizes[name]))
    MO[len(METRICS)] = len(columns)
    header = np.zeros(TABLE_BASE, dtype=np.int64)
    header[:N_DIMS] = D
    header[OFF_O:OFF_O + len(TABLES)] = offsets
    header[OFF_MO:OFF_MO + len(MO)] = MO
    P = np.concatenate([header] + parts)
    return Packed(P=P, O=offsets, D=D, MO=MO, metric_columns=columns)
