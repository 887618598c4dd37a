"""Pairing predictions with ground truth: names, prefixes, groups, masks, missing rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aifcli.errors import InputError, UsageError
from aifcli.metrics.pairing import group_from_rest, index_gt, pair_inputs, resolve_mask


def touch_png(p: Path) -> Path:
    import cv2

    p.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(p), np.zeros((8, 8, 3), np.uint8))
    return p


def test_group_words():
    assert group_from_rest("main_near") == "near"
    assert group_from_rest("main-far") == "far"
    assert group_from_rest("fg") == "near" and group_from_rest("background") == "far"
    assert group_from_rest("nearby_x4") == "all"  # whole tokens only
    assert group_from_rest("") == "all"


def test_longest_prefix_wins_and_side_outputs_are_skipped(tmp_path):
    G, P = tmp_path / "G", tmp_path / "P"
    for k in ("scene_1", "scene_10"):
        touch_png(G / k / "gt" / "aif.png")
        touch_png(G / k / "gt" / "infocus_near.png")
    touch_png(P / "scene_10_main_near.png")
    touch_png(P / "scene_1_main_near.png")
    touch_png(P / "scene_1_depth.png")
    touch_png(P / "unrelated.png")
    res = pair_inputs(P, G)
    got = {(p.name, p.key, p.group, p.problem) for p in res.pairs}
    assert ("scene_10_main_near", "scene_10", "near", None) in got
    assert ("scene_1_main_near", "scene_1", "near", None) in got
    assert len(res.pairs) == 2  # no missing rows: both scenes have the only group
    reasons = {f.name: why for f, why in res.ignored}
    assert "side output" in reasons["scene_1_depth.png"]
    assert "no ground truth" in reasons["unrelated.png"]
    assert set(index_gt(G)) == {"scene_1", "scene_10"}  # masks in gt/ are not GT images


def test_missing_group_and_missing_scene(tmp_path):
    G, P = tmp_path / "G", tmp_path / "P"
    for k in ("a", "b", "c"):
        touch_png(G / f"{k}.png")
    touch_png(P / "a_near.png")
    touch_png(P / "a_far.png")
    touch_png(P / "b_near.png")
    res = pair_inputs(P, G)
    missing = sorted((p.key, p.group) for p in res.pairs if p.problem == "missing prediction")
    assert missing == [("b", "far"), ("c", "far"), ("c", "near")]


def test_scene_folder_as_gt_and_single_file_against_folder(tmp_path):
    scene = tmp_path / "burst_0003"
    gtf = touch_png(scene / "gt" / "aif.png")
    assert index_gt(scene)["burst_0003"].path == gtf
    pred = touch_png(tmp_path / "out" / "burst_0003.png")
    res = pair_inputs(pred, tmp_path)  # tmp_path holds the scene folder
    assert len(res.pairs) == 1 and res.pairs[0].pred == pred and res.pairs[0].gt == gtf
    with pytest.raises(InputError, match="no ground truth matches"):
        pair_inputs(touch_png(tmp_path / "out" / "zzz.png"), tmp_path)
    with pytest.raises(UsageError):
        pair_inputs(tmp_path / "out", gtf)


def test_pattern_and_group_options(tmp_path):
    G, P = tmp_path / "G", tmp_path / "P"
    touch_png(G / "0007.png")
    touch_png(P / "result-0007-A.png")
    res = pair_inputs(P, G, pattern=r"result-(?P<name>\d+)-(?P<group>[AB])")
    assert [(p.key, p.group) for p in res.pairs if p.pred] == [("0007", "A")]
    with pytest.raises(UsageError, match="name"):
        pair_inputs(P, G, pattern=r"result-(\d+)")
    touch_png(P / "0007.png")
    res = pair_inputs(P, G, group=r"^(\d)")
    assert {p.group for p in res.pairs if p.pred} == {"0"}


def test_resolve_mask(tmp_path):
    G, P = tmp_path / "G", tmp_path / "P"
    touch_png(G / "s" / "gt" / "aif.png")
    valid = touch_png(G / "s" / "gt" / "valid.png")
    touch_png(G / "plain.png")
    touch_png(G / "valid.png")  # a GT image that happens to be called valid: never a mask in auto mode
    touch_png(P / "s_near.png")
    touch_png(P / "plain.png")
    res = pair_inputs(P, G)
    by = {p.key: p for p in res.pairs if p.pred}
    assert resolve_mask(by["s"], "auto") == valid
    assert resolve_mask(by["plain"], "auto") is None
    assert resolve_mask(by["s"], "none") is None
    assert resolve_mask(by["s"], "infocus_{group}.png") == G / "s" / "gt" / "infocus_near.png"
    assert resolve_mask(by["plain"], str(valid)) == valid
