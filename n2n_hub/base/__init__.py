"""The ground floor: atomic writes, paths, progress, validation, image and file I/O, torchrun state.

Nothing here knows about experts, pairs or translators; every other layer may import it.
"""
