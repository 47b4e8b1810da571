"""Arrow arrays from NumPy arrays and lists of text, without pyarrow's ``pa.array``.

``pa.array`` asks pandas whether its argument is a pandas object, and so imports pandas on
its first call whenever pandas is installed (0.2-0.5 s of a command that never uses it).
:func:`array` builds the same arrays from their buffers (``pa.Array.from_buffers``): fixed-
width numbers and dates as they lie in memory, booleans and validity as bitmaps, text as
offsets and UTF-8 bytes. Anything else goes to ``pa.array``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["array", "dictionary", "table"]

_NUMERIC = {
    np.dtype(np.int8): pa.int8(), np.dtype(np.int16): pa.int16(),
    np.dtype(np.int32): pa.int32(), np.dtype(np.int64): pa.int64(),
    np.dtype(np.uint8): pa.uint8(), np.dtype(np.uint16): pa.uint16(),
    np.dtype(np.uint32): pa.uint32(), np.dtype(np.uint64): pa.uint64(),
    np.dtype(np.float32): pa.float32(), np.dtype(np.float64): pa.float64(),
}


def _bitmap(flags: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(flags.astype(bool, copy=False), bitorder="little"))


def _text(values: Sequence[str], mask: np.ndarray | None) -> pa.Array:
    encoded = [str(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] >= 2**31:
        return pa.array(list(values), pa.large_string(), mask=mask)
    validity = None if mask is None else _bitmap(~np.asarray(mask, bool))
    return pa.Array.from_buffers(pa.string(), len(encoded), [
        validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))],
        null_count=-1 if mask is not None else 0)


def array(values: Any, type: pa.DataType | None = None,  # noqa: A002 - pa.array's name
          mask: np.ndarray | None = None) -> pa.Array:
    """``pa.array(values, type, mask=mask)`` for a NumPy array of numbers or booleans (as
    ``type``: its own, or ``pa.date32()`` for days since 1970 as int32), or a list or array
    of text (``type`` None or ``pa.string()``); anything else is passed to ``pa.array``."""
    if isinstance(values, list | tuple) or (isinstance(values, np.ndarray)
                                            and values.dtype.kind == "U"):
        if type is None or type == pa.string():
            if all(isinstance(v, str) for v in values):
                return _text(list(values), mask)
        return pa.array(values, type, mask=mask)
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        return pa.array(values, type, mask=mask)
    n = len(values)
    validity = None if mask is None else _bitmap(~np.asarray(mask, bool))
    nulls = -1 if mask is not None else 0
    if values.dtype == np.bool_ and type in (None, pa.bool_()):
        return pa.Array.from_buffers(pa.bool_(), n, [validity, _bitmap(values)],
                                     null_count=nulls)
    own = _NUMERIC.get(values.dtype)
    if own is not None:
        data = np.ascontiguousarray(values)
        if type is None or type == own:
            return pa.Array.from_buffers(own, n, [validity, pa.py_buffer(data)],
                                         null_count=nulls)
        if type == pa.date32() and values.dtype == np.int32:
            return pa.Array.from_buffers(pa.date32(), n, [validity, pa.py_buffer(data)],
                                         null_count=nulls)
    return pa.array(values, type, mask=mask)


def dictionary(codes: np.ndarray, names: Sequence[str],
               mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """A dictionary column: int16 ``codes`` into ``names`` (null where ``mask``)."""
    return pa.DictionaryArray.from_arrays(array(np.asarray(codes).astype(np.int16), mask=mask),
                                          _text(list(names), None))


def table(columns: dict[str, Any], schema: pa.Schema | None = None) -> pa.Table:
    """``pa.table(columns, schema=schema)``, its NumPy columns made with :func:`array`."""
    return pa.table({name: array(v) if isinstance(v, np.ndarray) else v
                     for name, v in columns.items()}, schema=schema)
