"""hw3: experiment plugins discovered through the ``hw3.trainers`` entry-point group.

The host (registry, config, reporter, run store, datasets) is issue 3's work; until then the
``hw3`` command only lists what is installed.
"""
