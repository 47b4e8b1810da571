"""socialcredit.arrow builds the arrays pa.array builds, without importing pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit import arrow

DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
          np.float32, np.float64, np.bool_]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 70), dtype=st.sampled_from(DTYPES), masked=st.booleans(),
       seed=st.integers(0, 2**31 - 1), step=st.integers(1, 3))
def test_numbers_and_booleans_match_pa_array(n: int, dtype: type, masked: bool, seed: int,
                                             step: int) -> None:
    rng = np.random.default_rng(seed)
    values = (rng.integers(0, 100, n * step) % (2 if dtype is np.bool_ else 100)).astype(dtype)
    values = values[::step]  # a view with a stride, as slices of a buffer are
    mask = rng.random(n) < 0.3 if masked else None
    got = arrow.array(values, mask=mask)
    want = pa.array(values, mask=mask)
    got.validate(full=True)
    assert got.type == want.type and got.equals(want) and got.null_count == want.null_count


def test_dates_text_and_dictionaries_match_pa_array() -> None:
    days = np.array([0, 17532, 20000], np.int32)
    assert arrow.array(days, pa.date32()).equals(pa.array(days, pa.date32()))
    words = ["citizen", "business", "", "長沙"]
    mask = np.array([False, True, False, False])
    got = arrow.array(words, mask=mask)
    got.validate(full=True)
    assert got.equals(pa.array(words, pa.string(), mask=mask))
    codes = np.array([1, 0, 1, 1])
    d = arrow.dictionary(codes, ["citizen", "business"], mask)
    d.validate(full=True)
    assert d.equals(pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int16), mask=mask),
                                                   pa.array(["citizen", "business"])))
    # what it cannot build from buffers goes to pa.array
    assert arrow.array(np.array([1, 2], np.int64), pa.int32()).type == pa.int32()
    assert arrow.array([1, None]).null_count == 1


def test_a_run_does_not_import_pandas(tmp_path: object) -> None:
    """Neither the run nor its end-of-run summary imports pandas."""
    code = ("import sys; from socialcredit.run import simulate; from socialcredit.scenario "
            "import Scenario; from socialcredit.summary import summarize; "
            "p = simulate(Scenario.load('default'), out=sys.argv[1], citizens=2000, days=20); "
            "assert summarize(p)['lists']; print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path) + "/run"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr


@pytest.mark.parametrize("values", [np.zeros((2, 2)), np.array(["a", "b"], object)])
def test_other_input_goes_to_pa_array(values: np.ndarray) -> None:
    try:
        want = pa.array(values)
    except (pa.ArrowInvalid, ValueError, TypeError):
        with pytest.raises((pa.ArrowInvalid, ValueError, TypeError)):
            arrow.array(values)
        return
    assert arrow.array(values).equals(want)
