"""`vidrefocus config`: print the resolved configuration."""

from __future__ import annotations

import argparse

import yaml

from vidrefocus.cli.options import add_config_args
from vidrefocus.cli.output import console
from vidrefocus.config import load_config

__all__ = ["register"]


def _cmd_config(args: argparse.Namespace) -> int:
    config = load_config(args.preset, args.config)
    console.print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="print the resolved configuration")
    add_config_args(p)
    p.set_defaults(func=_cmd_config)
