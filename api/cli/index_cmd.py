"""Placeholder until this command group lands (replaced by its owner)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    return None
