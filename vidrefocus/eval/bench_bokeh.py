"""`vidrefocus bench bokeh`: ms per frame of BokehNet, with and without the learned fill,
against the exact scatter reference in the same run."""

from __future__ import annotations

import logging
import time

import torch

from vidrefocus.aperture import ApertureSpec
from vidrefocus.errors import InputError
from vidrefocus.eval.bench import SIZES, BenchReport, BenchRow
from vidrefocus.eval.reference_render import reference_render
from vidrefocus.layered import RenderSettings
from vidrefocus.models.bokehnet import BokehNet, default_weights_path, load_fill_net
from vidrefocus.train.scenes import make_scene

__all__ = ["run"]

log = logging.getLogger(__name__)

MAX_BLURS_PX = (0.5, 5.0, 15.0, 50.0)


def _time(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def run(
    size: str = "720p",
    seconds: float = 0.0,
    repeat: int = 2,
    sizes: tuple[str, ...] | None = None,
    device: str | None = None,
) -> BenchReport:
    """Time one frame of a three-layer scene (wall with lights, card, near disc) focused on
    the wall, for several largest blur radii, at each size.

    Args:
        size: frame size, or "all" for 720p and 1080p.
        seconds: unused (the io benchmark's clip length); kept for a uniform CLI.
        repeat: runs per row, the best is kept.
        sizes: explicit list of sizes (overrides `size`).
        device: "cpu" or "cuda" (default: cuda when available).
    """
    del seconds
    sizes = sizes or (("720p", "1080p") if size == "all" else (size,))
    for s in sizes:
        if s not in SIZES:
            raise InputError(f"unknown size {s!r}; use one of {', '.join(SIZES)} or all.")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    fill = load_fill_net(device=dev) if default_weights_path().is_file() else None
    report = BenchReport(
        title=f"bokeh: ms per frame on {dev.type}, three-layer scene, disk aperture",
        command=f"vidrefocus bench bokeh --size {size} --repeat {repeat}",
    )
    spec = ApertureSpec()
    for s in sizes:
        w, h = SIZES[s]
        scene = make_scene("three", h, w, seed=0)
        image, disp = scene.visible()
        image, disp = image[None].to(dev), disp[None].to(dev)
        # Scale K so the largest |radius| (the near disc, in front of the wall) is max_blur.
        span = float(disp.max() - disp.min())
        for max_blur in MAX_BLURS_PX:
            k = max_blur / span
            radius = k * (disp - disp.min())
            plain = BokehNet(RenderSettings(aperture=spec), fill=None)
            t_plain = _time(lambda f=plain, x=image, r=radius: f(x, r), repeat)
            layer_radii = [k * (d - float(disp.min())) for d in scene.disparity]
            t_ref = _time(lambda sc=scene, rs=layer_radii: reference_render(sc, rs, spec), 1)
            report.rows.append(
                BenchRow(f"{s}, max blur {max_blur:g} px: reference scatter", t_ref, 1, "exact")
            )
            report.rows.append(
                BenchRow(
                    f"{s}, max blur {max_blur:g} px: BokehNet, no learned fill",
                    t_plain,
                    1,
                    "layered",
                    ratio=t_plain / t_ref,
                )
            )
            if fill is not None:
                net = BokehNet(RenderSettings(aperture=spec), fill=fill)
                t_net = _time(lambda f=net, x=image, r=radius: f(x, r), repeat)
                report.rows.append(
                    BenchRow(
                        f"{s}, max blur {max_blur:g} px: BokehNet + learned fill",
                        t_net,
                        1,
                        "layered + FillNet",
                        ratio=t_net / t_ref,
                    )
                )
    return report
