"""The ``archcalc`` command line: ``archcalc MODEL_OR_SPEC_FILE [OPTIONS]`` and subcommands.

User mistakes (any :class:`~archcalc.errors.ArchcalcError`, bad option values) become one
message on stderr and exit code 2; only bugs show a traceback. sympy and torch are imported
only by the commands that need them.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from archcalc import service, zoo
from archcalc import spec as spec_module
from archcalc.conventions import CONVENTIONS
from archcalc.errors import ArchcalcError, SpecError, shorten
from archcalc.render import (
    DTYPE_BYTES,
    FORMATS,
    dumps,
    inception_dict,
    inception_table,
    render,
    to_text,
)
from archcalc.schema import envelope, plain
from archcalc.tabular import Column, Table

if TYPE_CHECKING:  # rich.console is imported only when printing to a terminal
    from rich.console import RenderableType

    from archcalc.analysis import Report

# Each example is run by tests/archcalc/test_cli.py.
EXAMPLES = (
    "archcalc vgg19 --table",
    "archcalc vgg19 --table --bias --format md",
    "archcalc alexnet-ungrouped --table --bias",
    "archcalc resnet20 --convention torchinfo --format csv",
    "archcalc vgg --set n5=2 --input 32x32x3 --table",
    "archcalc mlp-cifar --format json --dtype float16 --batch 128",
    "archcalc list",
    "archcalc inception --input 32x32x256 --set c3=128",
    "archcalc rf --layers 3 --kernel 5",
    "archcalc formula conv3-64 --input 224x224x3",
    "archcalc explain rf",
    "archcalc verify mlp-cifar",
)

# Click's UsageError, the base of every malformed command line, through typer's public
# BadParameter: typer 0.28 vendors Click as the private ``typer._click``, older versions
# depend on click itself, and the pinned range spans both.
ClickUsageError: type[Any] = next(c for c in typer.BadParameter.__mro__
                                  if c.__name__ == "UsageError")


def _usage_error(error: Any) -> NoReturn:
    """A malformed command line in one line, as archcalc's own errors: Click would add the
    usage and a hint, three or four lines in all. A bare command that shows its help
    (Click's NoArgsIsHelpError, matched by name as typer itself does) is left to Click."""
    if type(error).__name__ == "NoArgsIsHelpError":
        raise error
    typer.echo(f"error: {error.format_message()}", err=True)
    raise typer.Exit(error.exit_code)


def stdout_to_devnull() -> None:
    """The reader of our output went away (``archcalc list | head -1``): point stdout at
    the null device, so that the interpreter's last flush cannot fail, as Python's
    documentation on SIGPIPE recommends. The command then ends with success: the rest of
    its output was not wanted."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor: a test's buffer
        pass


def quiet_stdout() -> NoReturn:
    stdout_to_devnull()
    raise typer.Exit(0)


class _Edge:
    """Mixed into the app and the one-command app (``archcalc MODEL``): a usage error of any
    command is reported in one line; a closed pipe ends it quietly."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)  # type: ignore[misc]
        except ClickUsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except ClickUsageError as exc:
            _usage_error(exc)
        except BrokenPipeError:
            quiet_stdout()


class _Group(_Edge, TyperGroup):
    pass


class _Command(_Edge, TyperCommand):
    pass


app = typer.Typer(
    cls=_Group,
    name="archcalc", no_args_is_help=True, rich_markup_mode=None,
    help="Exact, explainable numbers about CNN architectures. 'archcalc MODEL_OR_SPEC_FILE "
         "[OPTIONS]' is short for 'archcalc analyze ...'.",
    epilog="Examples:\n\n\b\n" + "\n".join(f"  {e}" for e in EXAMPLES),
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"archcalc {service.version()}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool | None, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print archcalc's version and exit.")] = None,
) -> None:
    # Typer's help for the app is the one given above; this only adds --version.
    pass


# Choice lists come from their one registry: writers, conventions, number types.
Fmt = StrEnum("Fmt", {n: n for n in FORMATS})  # type: ignore[misc]
ConventionName = StrEnum("ConventionName", {n: n for n in CONVENTIONS})  # type: ignore[misc]
Dtype = StrEnum("Dtype", {n: n for n in DTYPE_BYTES})  # type: ignore[misc]
RICH, FULL, FLOAT32 = Fmt("rich"), ConventionName("full"), Dtype("float32")  # the defaults


TableOpt = Annotated[bool, typer.Option(
    "--table", help="The homework table: activations and weights per layer.")]
BiasOpt = Annotated[bool, typer.Option("--bias", help="Count biases in the homework table.")]
ConventionOpt = Annotated[ConventionName, typer.Option(
    help="How operations become MACs and FLOPs.")]
class Whole:
    """A whole number option from ``low`` to ``high``, written in ASCII digits as a spec
    writes numbers (``int()`` would also take '٣', '1_000' and 5,000 digits): typer's
    ``parser``, so no Click type is needed."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.__name__ = "integer"  # the metavar: INTEGER

    def __call__(self, value: str | int) -> int:
        if isinstance(value, int):  # a default
            number = value
        elif re.fullmatch(r"[+-]?[0-9]{1,18}", value.strip()):
            number = int(value)
        else:
            raise typer.BadParameter(f"{shorten(value)!r} is not a whole number (ASCII "
                                     "digits, at most 18)")
        if not self.low <= number <= self.high:
            raise typer.BadParameter(f"{number} is not in the range "
                                     f"{self.low}<=x<={self.high}.")
        return number


BatchOpt = Annotated[int, typer.Option(parser=Whole(1, 10**9), help="Batch size for memory.")]
MAX_RF_LAYERS, MAX_RF_SIZE = 10_000, 10_000  # archcalc rf's options; the field is also bounded
DtypeOpt = Annotated[Dtype, typer.Option(help="Number type for memory.")]
ArgOpt = Annotated[list[str] | None, typer.Option(
    "--arg", metavar="NAME=VALUE", help="An argument of the factory; repeatable.")]
InputOpt = Annotated[str | None, typer.Option(
    "--input", metavar="HxWxC", help="Input shape, e.g. 224x224x3 (LxC for sequences, N "
                                     "for vectors).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="NAME=INT", help="Set a spec parameter; repeatable.")]
FormatOpt = Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")]
SkipOpt = Annotated[bool, typer.Option(
    "--skip-unknown", help="An imported model's operations without a rule that keep their "
    "input's shape count as zero (each named in a warning) instead of being an error.")]
VerifyFmt = StrEnum("VerifyFmt", {"rich": "rich", "json": "json"})
RICH_V = VerifyFmt("rich")  # a list of checks, not a table: no md, csv, latex, rst


# -- the edge: user mistakes -> message + exit 2 ----------------------------------------
@contextmanager
def edge() -> Iterator[None]:
    """Turn archcalc's user errors into a message on stderr and exit code 2."""
    try:
        yield
    except SpecError as exc:
        _fail(exc.render() if exc.loc else f"error: {exc}")
    except ArchcalcError as exc:
        _fail(f"error: {exc}")


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(2)


def emit(table: Table, data: dict[str, Any] | None = None, fmt: str = "rich") -> None:
    """Print ``table``: Rich on a terminal, plain text when piped, or another format."""
    if fmt == "rich" and sys.stdout.isatty():
        from rich.console import Console

        Console().print(table)
    else:
        typer.echo(render(table, fmt, data), nl=False)


def show_report(report: Report, fmt: Fmt, table: bool, bias: bool, dtype: Dtype,
                batch: int) -> None:
    """What 'archcalc MODEL' prints for a report, whatever the model was read from."""
    emit(*service.view(report, fmt.value, table=table, bias=bias, dtype=dtype.value,
                       batch=batch), fmt=fmt.value)


def show(renderable: RenderableType) -> None:
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(renderable)
    else:
        typer.echo(to_text(renderable, width=120), nl=False)


# -- commands ---------------------------------------------------------------------------
@app.command("analyze")
def analyze_cmd(
    model: Annotated[str, typer.Argument(metavar="MODEL_OR_SPEC_FILE",
                                         help="A zoo name (archcalc list) or a .arch file.")],
    table: TableOpt = False,
    bias: BiasOpt = False,
    input_: InputOpt = None,
    set_: SetOpt = None,
    convention: ConventionOpt = FULL,
    fmt: FormatOpt = RICH,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = FLOAT32,
    skip_unknown: SkipOpt = False,
) -> None:
    """Per-layer shapes, parameters, MACs/FLOPs, receptive fields and memory of a model."""
    with edge():
        report = service.report(model, service.input_shape(input_),
                                service.parameters(set_ or ()), convention.value,
                                skip_unknown)
        show_report(report, fmt, table, bias, dtype, batch)


@app.command("torch")
def torch_cmd(
    factory: Annotated[str, typer.Argument(
        metavar="PACKAGE.MODULE:FACTORY", help="What builds the torch.nn.Module, e.g. "
        "mymodels:resnet18, or path/to/file.py:Net.")],
    arg: ArgOpt = None,
    table: TableOpt = False,
    bias: BiasOpt = False,
    input_: Annotated[str | None, typer.Option(
        "--input", metavar="HxWxC", help="Input shape, e.g. 224x224x3 (the default; LxC for "
        "sequences, N for vectors).")] = None,
    convention: ConventionOpt = FULL,
    fmt: FormatOpt = RICH,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = FLOAT32,
    skip_unknown: SkipOpt = False,
) -> None:
    """Read a torch module (traced with torch.fx: no weights are run) and show what
    'archcalc MODEL' shows for a spec. Needs torch (the verify extra)."""
    with edge():
        report = service.torch_report(factory, arg or (), service.input_shape(input_),
                                      convention.value, skip_unknown)
        show_report(report, fmt, table, bias, dtype, batch)


@app.command("keras")
def keras_cmd(
    target: Annotated[str, typer.Argument(
        metavar="MODEL.keras|PACKAGE.MODULE:FACTORY", help="A saved Keras model, or what "
        "builds one, e.g. keras.applications:ResNet50 --arg weights=none, or "
        "path/to/file.py:build.")],
    arg: ArgOpt = None,
    table: TableOpt = False,
    bias: BiasOpt = False,
    input_: Annotated[str | None, typer.Option(
        "--input", metavar="HxWxC", help="Input shape, passed to the factory as "
        "input_shape=(H, W, C) (default: the model's own).")] = None,
    convention: ConventionOpt = FULL,
    fmt: FormatOpt = RICH,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = FLOAT32,
    skip_unknown: SkipOpt = False,
) -> None:
    """Read a Keras model (its layer graph: no weights are run) and show what 'archcalc
    MODEL' shows for a spec. Needs tensorflow. 'archcalc MODEL.keras' is short for it."""
    with edge():
        report = service.keras_report(target, arg or (), service.input_shape(input_),
                                      convention.value, skip_unknown)
        show_report(report, fmt, table, bias, dtype, batch)


@app.command("to-spec")
def to_spec_cmd(
    source: Annotated[str, typer.Argument(
        metavar="MODEL_OR_FACTORY", help="A zoo name, a .arch file, a saved Keras model "
        "(.keras), or a torch factory (PACKAGE.MODULE:FACTORY or FILE.py:FACTORY).")],
    arg: ArgOpt = None,
    input_: InputOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write the model as an archcalc spec (repeats folded) that parses back to the same
    numbers: read a torch module once, then edit and analyse it as text."""
    with edge():
        from archcalc.writer import to_spec

        graph = service.graph_of(source, service.input_shape(input_),
                                 service.parameters(set_ or ()), arg or ())
        typer.echo(to_spec(graph), nl=False)


@app.command("list")
def list_cmd(fmt: FormatOpt = RICH) -> None:
    """The zoo: every model name, its spec file, preset parameters and source."""
    entries = zoo.entries()
    rows = tuple((e.name, e.file.name, " ".join(f"{k}={v}" for k, v in e.overrides), e.source)
                 for e in entries)
    columns = (Column("Model", "left"), Column("Spec", "left"), Column("Preset", "left"),
               Column("Source", "left"))
    data = envelope({"models": [{"name": e.name, "spec": e.file.name,
                                 "preset": dict(e.overrides), "source": e.source}
                                for e in entries]})
    emit(Table("archcalc zoo", columns, rows), data, fmt=fmt.value)


def verbatim(text: str) -> str:
    """Help text that Click prints as written (each paragraph marked with ``\\b``)."""
    return "\n\n".join(f"\b\n{p}" for p in text.strip().split("\n\n"))


@app.command("spec", help=verbatim(spec_module.__doc__ or ""))
def spec_cmd() -> None:
    typer.echo(spec_module.__doc__)


@app.command("inception")
def inception_cmd(input_: InputOpt = None, set_: SetOpt = None,
                  fmt: FormatOpt = RICH) -> None:
    """Compare inception-naive and inception-reduction: output size, MACs per branch, saving.

    --set applies to each module that has the parameter (c1, c3, c5 both; r3, r5,
    pool_proj the reduction module)."""
    with edge():
        naive, reduced = service.inception_reports(service.parameters(set_ or ()),
                                                   service.input_shape(input_))
        data = inception_dict(naive, reduced) if fmt.value == "json" else None
        emit(inception_table(naive, reduced), data, fmt=fmt.value)


@app.command("rf")
def rf_cmd(
    layers: Annotated[int, typer.Option(parser=Whole(1, MAX_RF_LAYERS),
                                        help="Number of stacked convolutions N.")],
    kernel: Annotated[int, typer.Option(parser=Whole(1, MAX_RF_SIZE),
                                        help="Kernel size F (F x F).")],
    stride: Annotated[int, typer.Option(parser=Whole(1, MAX_RF_SIZE),
                                        help="Stride of every layer.")] = 1,
    dilation: Annotated[int, typer.Option(parser=Whole(1, MAX_RF_SIZE),
                                          help="Dilation of every layer.")] = 1,
    fmt: FormatOpt = RICH,
) -> None:
    """Receptive field of N stacked FxF convolutions, derived in closed form and, for
    stride 1, written in the homework's form NF - N + 1."""
    with edge():
        from archcalc.symbolic import rf_stack

        derivation = rf_stack(layers, kernel, stride=stride, dilation=dilation)
        if fmt == RICH:
            for line in derivation.lines():
                typer.echo(line)
            return
        emit(derivation.table(), envelope(derivation.data()), fmt=fmt.value)


ExplainFmt = StrEnum("ExplainFmt", {n: n for n in ("rich", "md", "json")})  # type: ignore[misc]
EXPLAIN_RICH = ExplainFmt("rich")
EXPLAIN_WIDTH = 80  # prose reads best at 80 columns, however wide the terminal


@app.command("explain")
def explain_cmd(
    topic: Annotated[str | None, typer.Argument(
        metavar="[TOPIC]", help="rf (3.3) or inception (3.4); without it, the list.")] = None,
    fmt: Annotated[ExplainFmt, typer.Option("--format", "-f", help="Output format.")
                   ] = EXPLAIN_RICH,
) -> None:
    """The written answers of Problem 3 (3.3's proof, 3.4's explanations): the same text
    the documentation's Problem 3 page shows."""
    with edge():
        from archcalc import explain

        if topic is None:
            topics = explain.TOPICS.values()
            columns = (Column("Topic", "left"), Column("Question", "left"),
                       Column("Written answer", "left"))
            data = envelope({"topics": [{"name": t.name, "question": t.question,
                                         "title": t.title, "numbers": t.numbers}
                                        for t in topics]})
            emit(Table("archcalc explain TOPIC", columns,
                       tuple((t.name, t.question, t.title) for t in topics)), data, fmt.value)
            return
        found = explain.topic(topic)
        if fmt.value == "json":
            typer.echo(dumps(envelope({
                "topic": found.name, "question": found.question, "title": found.title,
                "parts": [{"heading": p.heading, "file": p.file, "text": p.text()}
                          for p in found.parts], "numbers": found.numbers,
                "result": explain.RESULTS[found.name]()})), nl=False)
        elif fmt.value == "md":
            typer.echo(found.markdown(), nl=False)
        else:
            from rich.markdown import Markdown

            text = Markdown(found.markdown())
            if sys.stdout.isatty():
                from rich.console import Console

                Console(width=min(EXPLAIN_WIDTH, Console().width)).print(text)
            else:
                typer.echo(to_text(text, width=EXPLAIN_WIDTH), nl=False)


@app.command("formula")
def formula_cmd(
    layer: Annotated[str, typer.Argument(help="One layer in spec notation, e.g. conv3-64.")],
    input_: Annotated[str, typer.Option("--input", metavar="HxWxC",
                                       help="The layer's input shape.")] = "224x224x3",
    fmt: FormatOpt = RICH,
) -> None:
    """A layer's parameter and MAC formulas with its numbers substituted."""
    with edge():
        from archcalc.symbolic import layer_formulas

        shape = service.input_shape(input_)
        assert shape is not None  # the option has a default
        found = layer_formulas(layer, shape)
        if fmt == RICH:
            for line in found.lines():
                typer.echo(line)
            return
        rows = tuple((r.name, "" if r.formula.is_number else str(r.formula), r.value)
                     for r in found.rows)
        table = Table(found.lines()[0], (Column("Quantity", "left"),
                                         Column("Formula", "left"), Column("Value")), rows)
        data = envelope({"layer": found.label, "input": list(found.in_shape),
                         "output": list(found.out_shape),
                         "formulas": [{"name": r.name, "formula": None if r.formula.is_number
                                       else str(r.formula), "value": r.value}
                                      for r in found.rows]})
        emit(table, data, fmt=fmt.value)


@app.command("verify")
def verify_cmd(
    model: Annotated[str, typer.Argument(metavar="MODEL_OR_SPEC_FILE")],
    input_: InputOpt = None,
    set_: SetOpt = None,
    rf: Annotated[bool, typer.Option(
        "--rf/--no-rf", help="Probe receptive fields by gradients.")] = True,
    against: Annotated[str | None, typer.Option(
        "--against", metavar="PACKAGE.MODULE:FACTORY", help="Compare the spec with the torch "
        "model it describes, layer by layer, instead (FILE.py:FACTORY too).")] = None,
    arg: Annotated[list[str] | None, typer.Option(
        "--arg", metavar="NAME=VALUE", help="An argument of --against's factory.")] = None,
    fmt: Annotated[VerifyFmt, typer.Option("--format", "-f", help="Output format.")] = RICH_V,
) -> None:
    """Check archcalc's numbers against torchinfo, fvcore and a gradient RF probe (needs the
    verify extra); with --against, check that the spec describes a real torch model. Exit
    code 1 when a number disagrees."""
    with edge():
        shape = service.input_shape(input_)
        params = service.parameters(set_ or ())
        if against is not None:
            result = service.verify_against(model, against, arg or (), shape, params)
        else:
            from archcalc.verify import verify_model

            result = verify_model(model, input_shape=shape, params=params or None,
                                  probe_rf=rf)
        if fmt == RICH_V:
            show(result)
        else:
            typer.echo(dumps(verify_dict(result, "against" if against else "tools")), nl=False)
        if not result.ok:
            raise typer.Exit(1)


def verify_dict(result: Any, mode: str) -> dict[str, Any]:
    """``archcalc verify --format json``: every check, as the table shows them unfolded."""
    return envelope({"mode": mode, "model": result.model, "input": list(result.input_shape),
                     "ok": result.ok, "passed": len(result.checks) - len(result.failures),
                     "failed": len(result.failures),
                     "checks": [{"name": c.name, "path": c.path, "expected": plain(c.expected),
                                 "actual": plain(c.actual), "ok": c.ok}
                                for c in result.checks],
                     "notes": list(result.notes)})


# -- entry point ------------------------------------------------------------------------
COMMANDS = frozenset({"analyze", "torch", "keras", "to-spec", "list", "spec", "inception",
                      "rf", "explain", "formula", "verify"})


APP_OPTIONS = frozenset({"--help", "-h", "--version", "--install-completion",
                         "--show-completion"})


def route(args: list[str]) -> list[str]:
    """``archcalc vgg19 --table`` -> ``archcalc analyze vgg19 --table``."""
    if not args or args[0] in COMMANDS or args[0] in APP_OPTIONS:
        return args
    if args[0].lower().endswith(".keras"):  # a saved Keras model
        return ["keras", *args]
    return ["analyze", *args]


# ``archcalc MODEL ...`` is the hot path (the seed's table must print instantly): there a
# one-command app parses the options, sparing typer the signatures of every other command.
analyze_app = typer.Typer(add_completion=False, rich_markup_mode=None)
analyze_app.command(cls=_Command)(analyze_cmd)


def main(argv: list[str] | None = None) -> None:
    """The ``archcalc`` script (and ``python -m archcalc``)."""
    args = route(list(sys.argv[1:] if argv is None else argv))
    try:
        try:
            if args[:1] == ["analyze"] and len(args) > 1:
                analyze_app(args=args[1:], prog_name="archcalc analyze")
            else:
                app(args=args, prog_name="archcalc")
        finally:  # a reader that stopped early shows here, not in the interpreter's exit
            sys.stdout.flush()
    except BrokenPipeError:
        stdout_to_devnull()
        sys.exit(0)
