"""``.. optlab-cli-help::``: the ``optlab`` command's ``--help`` texts, taken from its parser.

The command page shows what ``optlab --help`` and ``optlab <command> --help`` print, generated
at build time from ``optlab.cli.main.build_parser()``, so a new option or sub-command appears
without anyone editing ``docs/``. Each sub-command gets a section titled ``optlab <command>``.
"""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

WIDTH = "88"  # argparse wraps to $COLUMNS


def _help(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        return parser.format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse exposes sub-parsers only through its actions
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class CliHelp(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        parser = importlib.import_module("optlab.cli.main").build_parser()
        result: list[nodes.Node] = [nodes.literal_block(text=_help(parser), language="text")]
        for name, sub in _subcommands(parser).items():
            title = f"optlab {name}"
            section = nodes.section(
                ids=[nodes.make_id(title)], names=[nodes.fully_normalize_name(title)]
            )
            section += nodes.title(text=title)
            section += nodes.literal_block(text=_help(sub), language="text")
            self.state.document.note_implicit_target(section)
            result.append(section)
        return result


def setup(app) -> dict[str, Any]:
    app.add_directive("optlab-cli-help", CliHelp)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
