"""One reader of user inputs by the expert's input domain, for every face.

The CLI, the Python API (:meth:`Translator.translate`, :meth:`Hub.translate`,
:meth:`Hub.transfer`) and the server hand what a user holds (texts, image files or
folders, image tensors) to :func:`read_inputs`, so a path means the same thing everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from .expert import ExpertSpec

PathLike = (str, Path)


def _as_list(items: Any) -> list[Any]:
    if isinstance(items, (str, Path, bytes)):
        return [items]
    if isinstance(items, (list, tuple)):
        return list(items)
    return [items]


def read_inputs(spec: ExpertSpec, items: Any, *, exact: bool = False, who: str | None = None,
                notify: Callable[[str], None] | None = None) -> Any:
    """``items`` as the batch ``spec``'s expert encodes.

    - ``text``: one string or a list of strings, each valid UTF-8 and not blank.
    - ``image``: a tensor passes unchanged; image files and folders (``str`` or ``Path``)
      are read as ``(B, C, H, W)`` in [-1, 1] at the expert's ``input_shape``. With
      ``exact`` (transfer keeps pose and outline) a file of another size is refused
      instead of resized; otherwise each conversion is told to ``notify`` in one line.
    - any other domain: passed on for the expert to check.
    """
    who = who or spec.id
    if spec.input_domain == "text":
        from ..base.validation import check_texts

        texts = _as_list(items)
        if not texts:
            raise InputError(f"{who} needs at least one text")
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise InputError(f"input {bad + 1} for {who} is a {type(texts[bad]).__name__}, not a text")
        return check_texts(texts)
    if spec.input_domain == "image" and _holds_paths(items):
        return _read_image_paths(spec, _as_list(items), exact, who, notify)
    return items


def input_labels(spec: ExpertSpec, items: Any) -> list[str]:
    """One label per row that :func:`read_inputs` makes of ``items``: the text, or the image file it came from."""
    listed = _as_list(items)
    if spec.input_domain == "image" and _holds_paths(listed):
        from ..base.inputs import image_files

        return [str(f) for item in listed for f in (image_files(Path(item)) if Path(item).is_dir() else [item])]
    return [str(i) if isinstance(i, str) else str(n) for n, i in enumerate(listed)]


def _holds_paths(items: Any) -> bool:
    listed = _as_list(items)
    return bool(listed) and all(isinstance(i, PathLike) for i in listed)


def _read_image_paths(spec: ExpertSpec, items: list[Any], exact: bool, who: str,
                      notify: Callable[[str], None] | None = None) -> Any:
    from ..base.inputs import image_files, read_exact_images, read_images

    if spec.input_shape is None:
        raise InputError(f"{who} does not declare the image size it reads, so image files cannot be prepared for it")
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir() and not exact:
            paths += image_files(p)
        elif p.is_file():
            paths.append(p)
        elif p.is_dir():
            raise InputError(f"{p} is a folder; name the image files one by one")
        else:
            raise InputError(f"input image {item} does not exist")
    if exact:
        return read_exact_images(paths, spec.input_shape, who)
    notes: list[str] = []
    images = read_images(paths, spec.input_shape, notes)
    if notes and notify is not None:
        c, h, w = spec.input_shape
        more = f" and {len(notes) - 1} more" if len(notes) > 1 else ""
        notify(f"{notes[0]}{more}; {who} reads {w}×{h} {'grey' if c == 1 else 'RGB'} images, so "
               f"{'they were' if len(notes) > 1 else 'it was'} converted and resized")
    return images
