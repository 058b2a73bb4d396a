"""`python -m vidrefocus.train {bokeh,deblur,depth} --config FILE [--out PATH]`: reproducible."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidrefocus.train")
    parser.add_argument("what", choices=["bokeh", "deblur", "depth"], help="which model to train")
    parser.add_argument("--config", type=Path, required=True, help="YAML in configs/train/")
    parser.add_argument("--out", type=Path, help="weights path (default: the packaged one)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "bokeh":
        from vidrefocus.train.bokeh import TrainConfig, train_bokeh

        card = train_bokeh(TrainConfig.from_yaml(args.config), args.out)
    elif args.what == "deblur":
        from vidrefocus.train.deblur import DeblurTrainConfig, train_deblur

        card = train_deblur(DeblurTrainConfig.from_yaml(args.config), args.out)
    else:
        from vidrefocus.train.depth import DepthTrainConfig, train_depth

        card = train_depth(DepthTrainConfig.from_yaml(args.config), args.out)
    json.dump(card["metrics"], sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
