"""Compile the GPU backend's kernels to PTX for an H100 (compute capability 9.0), no GPU needed.

The CUDA simulator runs the kernels as Python, so it cannot catch what only numba-cuda's
typing and lowering reject; this does. It needs NVVM (libnvvm) and NVRTC, which numba-cuda
finds in a CUDA toolkit or in the ``nvidia-*`` wheels; without them it prints ``skip: …`` and
exits with status 3. Otherwise it prints one JSON object: PTX sizes and the count of
floating-point instructions in the day kernel (there must be none: DESIGN 2.9).

    python tests/gpu_ptx_check.py
"""

from __future__ import annotations

import json
import re
import sys
import time
import types as pytypes

CC = (9, 0)


def _no_device() -> None:
    # Device functions are compiled for the current device's compute capability; without a
    # GPU there is none, so pretend to be the target (only the compiler reads it).
    import numba.cuda.dispatcher as dispatcher

    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=CC)


def _probe() -> str | None:
    from numba import cuda

    def k(a):  # type: ignore[no-untyped-def]
        a[0] = 1

    try:
        cuda.compile_ptx(k, "(int64[:],)", cc=CC)
    except Exception as e:  # noqa: BLE001 - any failure here means no toolchain
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def main() -> int:
    _no_device()
    why = _probe()
    if why is not None:
        print(f"skip: NVVM/NVRTC not usable here ({why[:200]})")
        return 3
    from numba import cuda, from_dtype, types

    from socialcredit.kernel import gpu as G
    from socialcredit.kernel.step import STATE_DTYPE

    i64 = types.int64
    rec = types.Array(from_dtype(STATE_DTYPE), 1, "C")
    a1 = types.Array(i64, 1, "C")
    a2 = types.Array(i64, 2, "C")
    u1 = types.Array(types.uint32, 1, "C")
    u2 = types.Array(types.uint32, 2, "C")
    ev = types.Array(types.int32, 3, "C")
    kernels = {
        "day": (G._day_kernel, (i64, i64, a1, a1, rec, u2, u1, a2, a2, ev)),
        "populate": (G._populate_kernel, (a2, i64, i64, i64, rec, u1, types.boolean)),
        "reduce": (G._reduce_kernel, (a2, a1)),
        "reset_positions": (G._reset_positions, (a2,)),
        "zero": (G._zero_kernel, (u1,)),
    }
    out: dict[str, object] = {"cc": list(CC)}
    for name, (kern, sig) in kernels.items():
        t = time.perf_counter()
        ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=CC)
        out[f"{name}_ptx_bytes"] = len(ptx)
        out[f"{name}_seconds"] = round(time.perf_counter() - t, 1)
        if name == "day":
            body = "\n".join(line for line in ptx.splitlines() if not line.lstrip().startswith("//"))
            out["day_float_instructions"] = len(re.findall(r"\.f(16|32|64)\b", body))
            out["day_atomics"] = len(re.findall(r"\batom\.", body))
            out["day_calls"] = len(re.findall(r"\bcall(\.uni)?\b", body))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
