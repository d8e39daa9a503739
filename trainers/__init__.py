"""hw3: reproducible training experiments, each a plugin of entry-point group ``hw3.trainers``.

The host finds plugins (registry), layers their settings (config), runs them (session: start,
resume, preflight, summary, export), stores runs (store), shows progress (progress) and lends
devices, seeds and timing (runtime), datasets (data) and plots (plots); a plugin reaches it
only through trainers.api. The built-in plugins, one package each under trainers/plugins/,
reproduce Problems 1, 2, 4 and 5 of COMS6998 Homework 3; ``hw3`` (trainers.cli) is the
command line.
"""
