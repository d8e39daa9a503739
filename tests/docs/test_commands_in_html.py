"""Commands copied from the built pages work: no ``--`` rendered as a dash, and every option a
shown ``archcalc ...`` or ``hw3 ...`` command uses is one the CLI accepts.

Sphinx's smart quotes turned ``--bias`` in running text and tables into ``–bias`` (an en
dash), which a shell passes on as a different word; the options are checked against the
click commands of the Typer apps themselves, so a renamed option fails here too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
import typer
from docs_helpers import Build

from archcalc.cli import app as archcalc_app
from archcalc.cli import route
from trainers.cli import app as hw3_app

DASHED_OPTION = re.compile(r"[\u2013\u2014]+[A-Za-z]")  # what smart quotes make of --bias
PROMPT = re.compile(r"^\s*(?:[\w.-]*\$\s+)?")
PROGRAMS = {"archcalc": (archcalc_app, route), "hw3": (hw3_app, None)}


class Texts(HTMLParser):
    """The page's text: all of it, and apart the text of each code block (``<pre>``) and
    inline literal (``<code>``), in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.code: list[str] = []  # a block's lines; an inline literal joined as one line
        self._kind = ""
        self._depth = 0  # inside <pre> or <code>
        self._skip = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("pre", "code"):
            if not self._depth:
                self.code.append("")
                self._kind = tag
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag in ("pre", "code") and self._depth:
            self._depth -= 1
            if not self._depth and self._kind == "code":
                self.code[-1] = " ".join(self.code[-1].split())

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._depth:
            self.code[-1] += data


def page_texts(html: str) -> Texts:
    parser = Texts()
    parser.feed(html)
    return parser


def command_lines(code: str) -> list[str]:
    """Each line of a code block or literal that runs ``archcalc`` or ``hw3`` (after a
    ``$ `` or ``host$ `` prompt)."""
    found = []
    for line in code.splitlines():
        line = PROMPT.sub("", line, count=1)
        line = re.split(r"\s+#", line)[0].strip()
        if line.split(" ")[0] in PROGRAMS and len(line.split()) > 1:
            found.append(line)
    return found


def _subcommand(command: Any, ctx: Any, name: str) -> Any:
    """The subcommand ``name`` of a group (None for a placeholder such as ``NAME``)."""
    if not hasattr(command, "list_commands") or name not in command.list_commands(ctx):
        return None
    return command.get_command(ctx, name)


def accepted_options(line: str) -> tuple[set[str], list[str]]:
    """The options of the (sub)command ``line`` runs, and the options ``line`` uses."""
    prog, *args = line.split()
    app, router = PROGRAMS[prog]
    argv = list(router(args)) if router else args
    command = typer.main.get_command(app)
    ctx = command.context_class(command, info_name=prog)
    commands, word = [], ""
    for word in argv:
        sub = _subcommand(command, ctx, word)
        if sub is None:
            break
        command, ctx = sub, sub.context_class(sub, info_name=word, parent=ctx)
    commands.append(command)
    if hasattr(command, "list_commands") and re.fullmatch(r"[A-Z][A-Z_]*", word):
        # `hw3 run NAME --epochs 3`: a placeholder for any subcommand; its options count
        commands += [command.get_command(ctx, n) for n in command.list_commands(ctx)]
    accepted = {"--help"}
    for param in (p for c in commands for p in getattr(c, "params", [])):
        accepted.update(param.opts, param.secondary_opts)
    used = [w.split("=")[0] for w in argv if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", w)]
    return accepted, used


def problems(html: str) -> list[str]:
    """What is wrong with the commands on one page (empty: nothing)."""
    texts = page_texts(html)
    found = [f"dash instead of hyphens: {m.group(0)!r} in "
             f"{''.join(texts.text)[max(0, m.start() - 40):m.end() + 20]!r}"
             for m in DASHED_OPTION.finditer("".join(texts.text))]
    for code in texts.code:
        for line in command_lines(code):
            accepted, used = accepted_options(line)
            found += [f"{line!r}: {prog_option} is not an option of that command"
                      for prog_option in used if prog_option not in accepted]
    return found


def html_pages(build: Build) -> list[str]:
    return sorted(str(p.relative_to(build.out)) for p in build.out.rglob("*.html")
                  if not {"_modules", "_static", "_sources"} & set(p.parts))


def test_the_checker_flags_a_dashed_option_and_an_unknown_one() -> None:
    """The same function as below, on what smart quotes made of the pages (the check can
    fail), and on commands that are right (it does not fail for nothing)."""
    bad = ("<p>Parameters count weights only; \u2013bias adds the biases.</p>"
           "<pre>$ archcalc vgg19 --table --colour\nhw3 report RUN --to docs</pre>")
    found = problems(bad)
    assert any("'\u2013b'" in p for p in found), found
    assert any("--colour is not an option" in p for p in found), found
    assert len(found) == 2, found
    good = ("<p>Parameters count weights only; <code>--bias</code> adds the biases.</p>"
            "<pre>$ archcalc vgg19 --table --bias\nnode0$ hw3 run scaling --model-only "
            "--learners 1,2\n$ archcalc rf --layers 3 --kernel 5</pre>"
            "<code>hw3 run optimizers --help</code>")
    assert problems(good) == []


def test_commands_are_found_in_code_blocks_and_literals() -> None:
    texts = page_texts("<pre>$ archcalc vgg19 --table   # Table 1\noutput line</pre>"
                       "<p>run <code><span>hw3</span> <span>report</span>\n"
                       "<span>RUN</span> <span>--to</span> <span>docs</span></code></p>")
    assert [line for c in texts.code for line in command_lines(c)] == [
        "archcalc vgg19 --table", "hw3 report RUN --to docs"]


def test_every_page_renders_commands_that_paste(built_docs: Build) -> None:
    assert built_docs.returncode == 0, built_docs.stderr
    pages = html_pages(built_docs)
    assert "problems/problem2.html" in pages and "cli.html" in pages
    shown = sum(len(command_lines(c)) for p in pages
                for c in page_texts(built_docs.page(p.removesuffix(".html"))).code)
    assert shown > 30, shown  # the pages do show commands, so the loop below checks some
    found = {p: problems(built_docs.page(p.removesuffix(".html"))) for p in pages}
    assert not {p: f for p, f in found.items() if f}


@pytest.mark.parametrize("line", ["archcalc vgg19 --table --bias", "hw3 run scaling --model-only",
                                  "archcalc rf --layers 3 --kernel 5", "hw3 report RUN --to docs"])
def test_options_of_real_commands_are_accepted(line: str) -> None:
    accepted, used = accepted_options(line)
    assert used and set(used) <= accepted, (used, sorted(accepted))
