"""Errors a user can cause in hw3. Only the CLI turns them into messages and exit code 2
(archcalc's errors met during a run too); a run stopped by Ctrl-C exits 130."""

from __future__ import annotations


class Hw3Error(Exception):
    """Base of every user-facing hw3 error; never a bug."""


class ConfigError(Hw3Error):
    """A bad value in plugins.toml, a --config file or a CLI option."""


class PluginError(Hw3Error):
    """A plugin that is unknown, fails to import, or does not fit the Trainer protocol."""


class DatasetMissingError(Hw3Error):
    """A dataset that is not on disk; the message names the files and the fetch command."""


class DatasetCorruptError(Hw3Error):
    """A truncated, corrupt or untrusted dataset file; the message names the file."""


class FetchError(Hw3Error):
    """A download that failed (offline, bad checksum) or an archive that is unsafe."""


class RunError(Hw3Error):
    """A run that is locked by another process, unknown, or cannot be resumed."""


class DamagedRunError(RunError):
    """A run file that is unreadable or inconsistent; the message names the file, what is
    wrong and how to recover. Nothing of the run is changed when it is raised."""


class RunInterrupted(Exception):
    """A run stopped by Ctrl-C, its state saved; not a mistake (the CLI exits 130)."""
