"""The kernels: the per-subject day step (``step``) and its drivers (``cpu``, ``gpu``).

Importing this package imports nothing heavy: the GPU driver (and with it ``numba.cuda``)
loads only when a GPU backend is made, and :func:`gpu_available` asks the CUDA driver
directly (through ``ctypes``), so ``--backend auto`` stays cheap on machines without CUDA.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

#: Set to 1 (together with ``NUMBA_ENABLE_CUDASIM=1``) to let ``--backend auto`` pick the GPU
#: backend under numba's CUDA simulator: tests only, the simulator is slow.
SIM_ENV = "SOCIALCREDIT_GPU_SIM"

_probe: bool | None = None


def gpu_available() -> bool:
    """Whether the GPU backend can run here: numba-cuda installed and a CUDA device present.

    Cheap and never raises. Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) it is
    True only when ``SOCIALCREDIT_GPU_SIM=1`` asks for it explicitly."""
    try:
        if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
            return os.environ.get(SIM_ENV, "0") not in ("", "0")
        if importlib.util.find_spec("numba_cuda") is None:
            return False
        return _driver_has_device()
    except Exception:  # noqa: BLE001 - a probe must never fail the caller
        return False


def _driver_has_device() -> bool:
    """Ask the CUDA driver library for a device, once per process."""
    global _probe
    if _probe is None:
        _probe = False
        for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            count = ctypes.c_int(0)
            if lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0:
                _probe = count.value > 0
            break
    return _probe
