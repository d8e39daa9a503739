"""Models people already have, read into archcalc graphs: :mod:`archcalc.importers.torch`
(a torch ``nn.Module``) and :mod:`archcalc.importers.keras` (a Keras Functional or Sequential
model). Each importer needs its framework; archcalc's core imports none."""
