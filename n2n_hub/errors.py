"""One exception hierarchy for everything a user can get wrong.

Every error says what happened and what to do about it; the CLI prints the message
without a traceback. Catch :class:`N2NError` to handle them all.
"""

from __future__ import annotations


class N2NError(Exception):
    """Base class of every n2n-hub error meant for a user."""


class ShapeError(N2NError, ValueError):
    """A tensor does not have the shape or dtype a component expects."""


class UnknownExpertError(N2NError, KeyError):
    """No loaded plugin registers an expert with that id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class IncompatiblePairError(N2NError):
    """The two experts cannot be paired, and the message says which link is missing."""


class RegistryError(N2NError):
    """A registry.toml entry is invalid; the message names the file and key."""


class CacheError(N2NError):
    """A cached file is missing, truncated, corrupted or was tampered with."""


class TranslatorFileError(CacheError):
    """A translator file cannot be read or does not describe a module we can rebuild."""


class IntegrityError(CacheError):
    """A file's sha256 does not match the one it was published with."""


class MissingWeightsError(N2NError):
    """An expert's weights are not available locally and cannot be fetched."""


class OfflineError(MissingWeightsError):
    """Something must be downloaded but offline mode is on."""


class PluginError(N2NError):
    """A plugin registered something invalid or conflicting."""


class TrainingError(N2NError):
    """Training cannot go on (for example, repeated non-finite losses)."""


class CheckpointError(TrainingError):
    """A training checkpoint cannot be resumed: damaged, not ours, or another run's (the hub starts afresh)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}; delete it (or choose another checkpoint_path) to start afresh")


class InputError(N2NError, ValueError):
    """An input file or value given by the user cannot be used."""
