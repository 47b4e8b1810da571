"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A local Dask cluster of two single-threaded worker processes sharing the numba cache
    (they inherit NUMBA_CACHE_DIR), with one numba thread each; shut down after the module."""
    import distributed

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None,
                                       env={"NUMBA_NUM_THREADS": "1"})
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
