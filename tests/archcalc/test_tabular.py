"""The table writers' LaTeX: what LaTeX would mangle is escaped, once, in one function.

Under the default font encoding (OT1) ``<``, ``>`` and ``|`` print as "¡", "¿" and a dash, so
an inception row's ``conv1-128 -> conv3-192`` came out as "conv1-128 -¿ conv3-192", and
``--`` is an en dash. The decoder below is written from LaTeX's own meaning of each command,
not from archcalc's table, so a round trip checks the escape independently.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archcalc.tabular import Column, Table, latex_escape, to_latex

# What each command prints (LaTeX's text commands, textcomp's symbols, amssymb-free math).
PRINTS = {r"\&": "&", r"\%": "%", r"\$": "$", r"\#": "#", r"\_": "_", r"\{": "{", r"\}": "}",
          r"\textasciitilde{}": "~", r"\textasciicircum{}": "^", r"\textbackslash{}": "\\",
          r"\textless{}": "<", r"\textgreater{}": ">", r"\textbar{}": "|",
          r"\texttimes{}": "×", r"\textminus{}": "−", r"\ensuremath{\leq}": "≤",
          r"\ensuremath{\geq}": "≥", r"\ensuremath{\approx}": "≈",
          r"\ensuremath{\rightarrow}": "→", r"\dots{}": "…", "{}": ""}
TOKEN = re.compile(r"\\ensuremath\{\\[a-z]+\}|\\[a-z]+\{\}|\\[&%$#_{}]|\{\}|.", re.S)
# Characters LaTeX does not print as themselves in OT1 text, outside a command.
SPECIAL = set("&%$#_{}~^\\<>|")
LIGATURES = ("--", "``", "''", "!`", "?`")


def printed(tex: str) -> str:
    """What LaTeX prints for escaped text; a stray special character fails the test."""
    out = []
    for token in TOKEN.findall(tex):
        if len(token) == 1:
            assert token not in SPECIAL, (token, tex)
            out.append(token)
        else:
            out.append(PRINTS[token])
    return "".join(out)


def ligature_pairs(tex: str) -> list[str]:
    """Adjacent characters that would merge into one glyph."""
    return [tex[i:i + 2] for i in range(len(tex) - 1) if tex[i:i + 2] in LIGATURES]


@pytest.mark.parametrize(("text", "tex"), [
    ("conv1-128 -> conv3-192", r"conv1-128 -\textgreater{} conv3-192"),
    ("a -- b", "a -{}- b"),
    ("---", "-{}-{}-"),
    ("50% of C_in & $5 #2", r"50\% of C\_in \& \$5 \#2"),
    ("{x} ~ y^2 \\ z", r"\{x\} \textasciitilde{} y\textasciicircum{}2 \textbackslash{} z"),
    ("a < b > c | d", r"a \textless{} b \textgreater{} c \textbar{} d"),
    ("``q'' !` ?`", "`{}`q'{}' !{}` ?{}`"),
    ("2×3 − 1", r"2\texttimes{}3 \textminus{} 1"),
])
def test_latex_escape_examples(text: str, tex: str) -> None:
    assert latex_escape(text) == tex
    assert printed(tex) == text


@given(st.text(alphabet=st.sampled_from(sorted(SPECIAL) + list("-`'!?ab ×−≈→…\n")),
               max_size=40))
def test_latex_escape_round_trips_and_breaks_every_ligature(text: str) -> None:
    tex = latex_escape(text)
    assert printed(tex) == text
    assert ligature_pairs(tex) == []


def special_table() -> Table:
    return Table("Inception: naive -> reduced (100% & more)",
                 (Column("Branch_1", "left"), Column("MACs")),
                 (("conv1-128 -> conv3-192", 1_000), ("pool3 | {x} ~ #", 2)),
                 ("TOTAL", 1_002), ("[saving] ratio ~ 2x -- 10% less", "*note*"))


def test_to_latex_escapes_every_cell_title_and_note() -> None:
    tex = to_latex(special_table())
    lines = tex.splitlines()
    assert r"\caption{Inception: naive -\textgreater{} reduced (100\% \& more)}" in lines
    assert r"Branch\_1 & MACs \\" in lines
    assert r"conv1-128 -\textgreater{} conv3-192 & 1,000 \\ \hline" in lines
    assert r"pool3 \textbar{} \{x\} \textasciitilde{} \# & 2 \\ \hline" in lines
    # after '\\' a '[' or '*' would be the line break's argument: guarded by '{}'
    assert r"{}[saving] ratio \textasciitilde{} 2x -{}- 10\% less\\" in lines
    assert r"{}*note*\\" in lines
    assert "-¿" not in tex and "->" not in tex


def archcalc_tables() -> list[Table]:
    """What archcalc writes as LaTeX: a homework table, the inception comparison, an rf
    derivation (Unicode-free), and the table of special characters above."""
    import archcalc
    from archcalc import service
    from archcalc.render import homework_table, inception_table
    from archcalc.symbolic import rf_stack

    return [special_table(), homework_table(archcalc.analyze(archcalc.load("alexnet")), True),
            inception_table(*service.inception_reports({})), rf_stack(3, 5).table()]


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed; the escaping is checked above without "
                           "compiling")
def test_latex_tables_compile_and_print_the_text(tmp_path: Path) -> None:
    tables = archcalc_tables()
    doc = tmp_path / "table.tex"
    doc.write_text("\\documentclass{article}\n\\begin{document}\n"
                   + "".join(to_latex(t) for t in tables) + "\\end{document}\n",
                   encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           doc.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    if shutil.which("pdftotext") is None:
        return
    text = subprocess.run(["pdftotext", "-layout", "table.pdf", "-"], cwd=tmp_path,
                          capture_output=True, text=True, check=True).stdout
    assert "¿" not in text and "¡" not in text
    assert "conv1-128 -> conv3-192" in text  # the special table and the inception rows
    assert "maxpool3 s=1 p=1 -> conv1-64" in text
    assert "r(N) = NF - N + 1" in text
    assert "out*W" in text  # H\_out*W\_out: OT1 draws "_" as a rule, which has no text
    # OT1 has no ~ glyph: \textasciitilde is a raised tilde accent, which reads as U+02DC
    text = text.replace("\u02dc", "~")
    assert "pool3 | {x} ~ #" in text and "2x -- 10% less" in text
