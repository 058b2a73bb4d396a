"""Chunk planning: every frame in exactly one chunk, cuts at keyframes, warm-up before."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import pytest

from vidrefocus.errors import InputError
from vidrefocus.io.probe import frame_pts
from vidrefocus.runtime.plan import (
    ChunkPlan,
    Timeline,
    chunk_pts,
    plan_chunks,
    scan_timeline,
)


def _check_partition(timeline: Timeline, plan: ChunkPlan) -> None:
    """Union of chunks == all frames, no overlap, boundaries at keyframes, warm-up sane."""
    seen: list[int] = []
    keys = set(timeline.keyframes) | {timeline.pts[0]}
    for i, chunk in enumerate(plan.chunks):
        own = list(chunk_pts(timeline, chunk))
        assert chunk.index == i
        assert own, "empty chunk"
        assert own[0] == chunk.start_pts
        assert len(own) == chunk.frames
        assert chunk.start_pts in keys
        assert chunk.seek_pts in keys
        assert chunk.seek_pts <= chunk.warmup_pts <= chunk.start_pts
        before = [p for p in timeline.pts if chunk.warmup_pts <= p < chunk.start_pts]
        assert len(before) == chunk.warmup_frames <= plan.warmup_frames
        if i + 1 < len(plan.chunks):
            assert chunk.end_pts == plan.chunks[i + 1].start_pts
        seen += own
    assert seen == list(timeline.pts)
    assert plan.frame_count == len(timeline.pts)
    assert plan.chunks[-1].end_pts > timeline.pts[-1]


class TestPlanChunks:
    def test_constant_rate(self) -> None:
        tl = Timeline(tuple(range(0, 96 * 512, 512)), (0, 12288, 24576, 36864), Fraction(1, 12288))
        plan = plan_chunks(tl, chunk_seconds=1.0, warmup_frames=8)
        _check_partition(tl, plan)
        assert [c.start_pts for c in plan.chunks] == [0, 12288, 24576, 36864]
        assert [c.frames for c in plan.chunks] == [24] * 4
        second = plan.chunks[1]
        # 8 frames of warm-up before 12288, decoded from the keyframe before them
        assert (second.warmup_pts, second.seek_pts, second.warmup_frames) == (8192, 0, 8)
        assert plan.chunks[0].warmup_frames == 0

    def test_long_target_is_one_chunk(self) -> None:
        tl = Timeline(tuple(range(48)), (0, 24), Fraction(1, 24))
        plan = plan_chunks(tl, chunk_seconds=4.0)
        assert len(plan) == 1
        _check_partition(tl, plan)

    def test_no_keyframe_but_the_first(self) -> None:
        tl = Timeline(tuple(range(100)), (), Fraction(1, 24))
        plan = plan_chunks(tl, chunk_seconds=0.5)
        assert len(plan) == 1
        _check_partition(tl, plan)

    def test_cuts_near_the_target(self) -> None:
        # keyframes every 0.9 s: each is closer to a 1 s target than the next one
        tl = Timeline(tuple(range(0, 900)), tuple(range(0, 900, 90)), Fraction(1, 100))
        plan = plan_chunks(tl, chunk_seconds=1.0)
        assert {c.frames for c in plan.chunks} == {90}

    def test_warmup_zero(self) -> None:
        tl = Timeline(tuple(range(96)), (0, 24, 48, 72), Fraction(1, 24))
        plan = plan_chunks(tl, chunk_seconds=1.0, warmup_frames=0)
        assert all(c.warmup_pts == c.start_pts == c.seek_pts for c in plan.chunks)

    @pytest.mark.parametrize("seed", range(6))
    def test_random_vfr_partitions(self, seed: int) -> None:
        rng = random.Random(seed)
        pts, t = [], rng.randrange(-50, 50)
        for _ in range(rng.randrange(1, 400)):
            pts.append(t)
            t += rng.choice([17, 33, 40, 100, 500])
        keys = tuple(p for i, p in enumerate(pts) if i == 0 or rng.random() < 0.1)
        tl = Timeline(tuple(pts), keys, Fraction(1, 1000))
        plan = plan_chunks(tl, chunk_seconds=rng.choice([0.2, 1.0, 3.0]), warmup_frames=5)
        _check_partition(tl, plan)

    def test_plan_round_trips_through_json(self) -> None:
        tl = Timeline(tuple(range(96)), (0, 24, 48, 72), Fraction(1, 24))
        plan = plan_chunks(tl, chunk_seconds=1.0)
        assert ChunkPlan.from_dict(plan.to_dict()) == plan

    @pytest.mark.parametrize(
        ("pts", "seconds", "warmup", "message"),
        [
            ((0, 1, 2), 0.0, 8, "chunk length"),
            ((0, 1, 2), 1.0, -1, "warm-up"),
            ((), 1.0, 8, "no frames"),
            ((0, 2, 2, 3), 1.0, 8, "strictly increase"),
        ],
    )
    def test_errors(self, pts: tuple[int, ...], seconds: float, warmup: int, message: str) -> None:
        with pytest.raises(InputError, match=message):
            plan_chunks(Timeline(pts, pts[:1], Fraction(1, 24)), seconds, warmup)


class TestScanTimeline:
    def test_sample_scene(self, sample_scene: Path) -> None:
        tl = scan_timeline(sample_scene)
        assert tl.time_base == Fraction(1, 12288)
        assert list(tl.pts) == frame_pts(sample_scene)
        assert tl.keyframes == (0, 12288, 24576, 36864)
        plan = plan_chunks(tl, chunk_seconds=1.0)
        _check_partition(tl, plan)
        assert len(plan) == 4

    def test_vfr_clip(self, vfr_clip: Path) -> None:
        tl = scan_timeline(vfr_clip)
        assert tl.keyframes == (0, 379, 1292)
        plan = plan_chunks(tl, chunk_seconds=0.3)
        _check_partition(tl, plan)
        assert [c.start_pts for c in plan.chunks] == [0, 379, 1292]
        assert [c.frames for c in plan.chunks] == [10, 10, 10]
        # the last chunk's warm-up (frames 12..19) starts after keyframe 379: decode from there
        assert (plan.chunks[2].warmup_pts, plan.chunks[2].seek_pts) == (519, 379)

    def test_image_sequence(self, png_sequence: Path) -> None:
        tl = scan_timeline(png_sequence, Fraction(24))
        assert tl.keyframes == tl.pts
        plan = plan_chunks(tl, chunk_seconds=0.1, warmup_frames=2)
        _check_partition(tl, plan)
        assert len(plan) > 1

    def test_not_a_video(self, tmp_path: Path) -> None:
        bad = tmp_path / "notes.mp4"
        bad.write_text("not a video")
        with pytest.raises(InputError, match="not a media file"):
            scan_timeline(bad)
