"""The one `vqblur` command line: each subcommand lives in `vqblur/commands/<name>.py`.

A command module defines ``register(subparsers) -> None``, which adds its parser and sets
``func`` (``args -> int``) as a default. Modules import heavy libraries (torch, onnx,
matplotlib) inside ``func`` only, so ``vqblur live`` and ``vqblur process`` never load torch.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
import textwrap
from typing import NoReturn, Sequence

from vqblur.common.errors import UserError

# name -> module; the order is the order shown in --help.
COMMAND_MODULES: dict[str, str] = {
    "demo": "vqblur.commands.demo",
    "process": "vqblur.commands.process",
    "live": "vqblur.commands.live",
    "blur": "vqblur.commands.blur",
    "render-data": "vqblur.commands.render_data",
    "pack-data": "vqblur.commands.pack_data",
    "train": "vqblur.commands.train",
    "fit-nb": "vqblur.commands.fit_nb",
    "export": "vqblur.commands.export",
    "make-bundle": "vqblur.commands.make_bundle",
    "bench": "vqblur.commands.bench",
    "report": "vqblur.commands.report",
}


_ARGUMENT_PREFIX = re.compile(r"^argument (?P<flags>[^:]+): (?P<msg>.*)$", re.DOTALL)


def clean_usage_message(message: str) -> str:
    """argparse's "argument --zone-size: --zone-size must be in 0..1" -> "--zone-size must be in
    0..1"; "argument --block: expected a positive integer" -> "--block: expected a positive
    integer". Names the flag once, never twice."""
    m = _ARGUMENT_PREFIX.match(message)
    if not m:
        return message
    flags = [f for f in m.group("flags").split("/") if f]
    msg = m.group("msg")
    if any(msg.startswith(f) for f in flags):
        return msg
    return f"{flags[-1]}: {msg}"


_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)")


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings
            if o.startswith("--")]


def hyphenate_options(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--zone_size 0.3`` -> ``--zone-size 0.3`` (also ``--zone_size=0.3``) for the options of
    ``parser`` that exist only with hyphens; everything else (values, positionals, anything
    after ``--``) is left as it is."""
    known = set(parser._option_string_actions)
    out = []
    for i, a in enumerate(argv):
        if a == "--":
            return out + argv[i:]
        name, eq, value = a.partition("=")
        if name.startswith("--") and "_" in name and name not in known:
            hyphenated = "--" + name[2:].replace("_", "-")
            if hyphenated in known:
                a = hyphenated + eq + value
        out.append(a)
    return out


def unrecognized_message(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """"unrecognized arguments: --zone-sise 0.3; did you mean --zone-size?" (difflib's nearest
    option of ``parser`` for each unknown option, when one is close)."""
    options = _option_strings(parser)
    hints = []
    for a in extras:
        name = a.partition("=")[0]
        if not name.startswith("--"):
            continue
        near = difflib.get_close_matches(name.replace("_", "-"), options, n=1, cutoff=0.6)
        if near and near[0] not in hints:
            hints.append(near[0])
    text = f"unrecognized arguments: {' '.join(extras)}"
    if hints:
        text += f"; did you mean {' or '.join(hints)}?"
    return text


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs: a paragraph written as one line is wrapped to the terminal;
    in a paragraph with its own line breaks, indented lines (examples, tables) are kept as
    written and only an unindented line wider than the terminal is wrapped."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        def fill(line: str) -> str:
            return textwrap.fill(" ".join(line.split()), width, initial_indent=indent,
                                 subsequent_indent=indent)

        out = []
        for para in text.split("\n\n"):
            if "\n" in para.strip("\n"):
                out.append("\n".join(
                    indent + line if line[:1].isspace() or len(indent + line) <= width else fill(line)
                    for line in para.split("\n")))
            else:
                out.append(fill(para))
        return "\n\n".join(out)


class VqblurArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes read like every other vqblur user error: one line
    ``vqblur COMMAND: error: ...`` on stderr, exit code 2, no usage block (``--help`` has it).
    Subparsers inherit the class, so every subcommand and every shared validator gets it.
    Help text is laid out by :class:`HelpFormatter` (long description lines wrapped)."""

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("formatter_class") in (None, argparse.HelpFormatter,
                                             argparse.RawDescriptionHelpFormatter):
            kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        text = clean_usage_message(message)
        m = _ARGUMENT_PREFIX.match(message)
        choice = _INVALID_CHOICE.search(text)
        if choice:  # "invalid choice: 'procss' (choose from ...)": name the nearest choice
            near = difflib.get_close_matches(choice.group("value"),
                                             re.findall(r"'([^']*)'", choice.group("choices")), n=1)
            if near:
                text += f"; did you mean {near[0]}?"
        if not m or not m.group("flags").startswith("-"):  # missing/unknown argument or command
            text += f" (see `{self.prog} --help`)"
        self.exit(2, f"{self.prog}: error: {text}\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace=None):
        """As argparse's, with two kindnesses for the subcommands' options:

        * an option spelled with underscores (``--zone_size``, the knob table's spelling) is
          read as its hyphenated self (``--zone-size``) when only that one exists;
        * an unrecognised option is reported by its subcommand (``vqblur process: error: ...
          (see `vqblur process --help`)``) with the nearest option named ("did you mean
          --zone-size?"), not by the top-level parser.
        """
        argv = list(sys.argv[1:] if args is None else args)
        sub = self._subcommand_in(argv)
        if sub is not None:
            argv = hyphenate_options(argv, sub[1])
        ns, extras = self.parse_known_args(argv, namespace)
        if extras:
            target = self._subcommand_parser(getattr(ns, "command", None)) or self
            target.error(unrecognized_message(extras, target))
        return ns

    def _subcommands_action(self) -> argparse._SubParsersAction | None:
        return next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)

    def _subcommand_parser(self, name: str | None) -> argparse.ArgumentParser | None:
        action = self._subcommands_action()
        if action is None or name is None:
            return None
        return action.choices.get(name)

    def _subcommand_in(self, argv: list[str]) -> tuple[int, argparse.ArgumentParser] | None:
        """(index of the subcommand's name in argv, its parser), or None."""
        action = self._subcommands_action()
        if action is None:
            return None
        for i, a in enumerate(argv):
            if a == "--":
                return None
            if not a.startswith("-"):  # the top level has options only before the command
                p = action.choices.get(a)
                return (i, p) if p is not None else None
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = VqblurArgumentParser(
        prog="vqblur",
        description=(
            "vqblur: a real-time neural audio effect. A VQ-VAE turns the spectrogram into a grid "
            "of integer codes (rows = frequency bands, columns = time); a Naive Bayes model of "
            "neighbouring codes resamples a zone of that grid; the decoder turns it back into sound."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from vqblur import __version__

    parser.add_argument("--version", action="version", version=f"vqblur {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMAND_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name == module_name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"vqblur {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nvqblur {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
