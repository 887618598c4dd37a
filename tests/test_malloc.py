"""Process-level memory tuning (aifcli.batch.malloc): numpy's huge-page advice follows the heap tuning."""
import sys

import numpy as np
import pytest

from aifcli.batch import malloc

core = getattr(np, "_core", None) or np.core
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tuning is Linux/glibc only")


def _hugepages() -> bool:
    """numpy's current setting (the setter returns the previous value)."""
    prev = core.multiarray._set_madvise_hugepage(True)
    core.multiarray._set_madvise_hugepage(prev)
    return bool(prev)


@pytest.fixture
def restore(monkeypatch):
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    monkeypatch.delenv("AIF_MALLOC", raising=False)
    monkeypatch.delenv("AIF_STACK_MALLOC", raising=False)
    before = _hugepages()
    yield monkeypatch
    malloc.tune_malloc(malloc.MALLOC_MAX_PIXELS + 1)  # glibc's defaults again
    core.multiarray._set_madvise_hugepage(before)


@linux
def test_tuned_sizes_turn_numpys_hugepages_off_and_larger_ones_back_on(restore):
    core.multiarray._set_madvise_hugepage(True)
    malloc.tune_malloc(12_000_000)
    assert _hugepages() is False
    malloc.tune_malloc(malloc.MALLOC_MAX_PIXELS + 1)
    assert _hugepages() is True


@linux
def test_the_users_numpy_setting_and_aif_malloc_default_are_left_alone(restore):
    core.multiarray._set_madvise_hugepage(True)
    restore.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    malloc.tune_malloc(12_000_000)
    assert _hugepages() is True
    restore.delenv("NUMPY_MADVISE_HUGEPAGE")
    restore.setenv("AIF_MALLOC", "default")
    malloc.tune_malloc(12_000_000)
    assert _hugepages() is True
