"""Batch engine: find work in folders, run it in parallel (joblib or dask), log it."""
from .discover import Burst, Pair, discover_bursts, discover_pairs, read_manifest, split_flat_bursts
from .runner import BatchReport, ItemResult, WorkItem, run_batch, write_log

__all__ = ["BatchReport", "Burst", "ItemResult", "Pair", "WorkItem", "discover_bursts", "discover_pairs",
           "read_manifest", "run_batch", "split_flat_bursts", "write_log"]
