"""archcalc: exact, explainable numbers about CNN architectures.

    >>> import archcalc
    >>> report = archcalc.analyze(archcalc.load("vgg19"))
    >>> report.totals.params
    143667240

The core imports no deep-learning framework; ``archcalc.verify`` (extra ``verify``) checks
the numbers against torchinfo, fvcore and an empirical receptive-field probe, and
``archcalc.from_torch(module, input_size)`` reads a torch module (extra ``verify``) and
``archcalc.from_keras(model)`` a Keras model (tensorflow installed).
"""

from archcalc.analysis import Report, Row, analyze
from archcalc.errors import ArchcalcError, SpecError, UnknownModelError
from archcalc.layers import Graph
from archcalc.spec import parse, parse_file
from archcalc.zoo import load

__all__ = [
    "ArchcalcError", "Graph", "Report", "Row", "SpecError", "UnknownModelError", "analyze",
    "from_keras", "from_torch", "load", "parse", "parse_file",
]


def __getattr__(name: str) -> object:
    """``archcalc.from_torch`` and ``archcalc.from_keras`` import their framework on first
    use only."""
    if name == "from_torch":
        from archcalc.importers.torch import from_torch

        return from_torch
    if name == "from_keras":
        from archcalc.importers.keras import from_keras

        return from_keras
    raise AttributeError(f"module 'archcalc' has no attribute {name!r}")
