"""Models people already have, read into archcalc graphs: :mod:`archcalc.importers.torch`
(a torch ``nn.Module``). Each importer needs its framework; archcalc's core imports none."""
