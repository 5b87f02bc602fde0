"""The translator file: safetensors weights + JSON metadata, loaded without executing code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from n2n_hub.translators import file as translator_file
from n2n_hub.cinn.baseline import MLPTranslator
from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.errors import TranslatorFileError
from n2n_hub.translators.file import FORMAT_VERSION, load, read_metadata, save



def trained_like_flow() -> tuple[ConditionalINN, torch.Tensor, torch.Tensor]:
    """A flow with ActNorm initialised and weights moved off their initial values."""
    flow = ConditionalINN(5, ConditionSpec((4,), "vector"), n_blocks=3, hidden=16, seed=3)
    g = torch.Generator().manual_seed(0)
    c, z = torch.randn(32, 4, generator=g), torch.randn(32, 5, generator=g) * 2 + 1
    flow.initialize(z, c)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    return flow.eval(), z, c


def rewrite(path: Path, tensors: dict[str, torch.Tensor] | None = None, meta_update: dict | None = None) -> None:
    """Re-save a translator file with edited tensors or metadata (as a newer or broken writer would)."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["n2n_hub"])
    meta.update(meta_update or {})
    tensors = load_file(str(path)) if tensors is None else tensors
    save_file(tensors, str(path), metadata={"n2n_hub": json.dumps(meta)})


def test_cinn_round_trip_reproduces_outputs_bit_for_bit(tmp_path: Path) -> None:
    flow, z, c = trained_like_flow()
    path = tmp_path / "t.safetensors"
    written = save(path, flow, {"recipe": "shared-input", "metrics": {"val_nll": 0.5}})
    loaded, meta = load(path)
    assert isinstance(loaded, ConditionalINN) and not loaded.training
    assert meta == written == read_metadata(path)
    assert meta["recipe"] == "shared-input" and meta["format_version"] == FORMAT_VERSION
    assert torch.equal(loaded.residual(z, c), flow.residual(z, c))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(loaded.sample(c, n=3, generator=g1), flow.sample(c, n=3, generator=g2))
    assert all(m._initialized for m in loaded.modules() if hasattr(m, "_initialized"))


def test_mlp_round_trip_reproduces_outputs_bit_for_bit(tmp_path: Path) -> None:
    mlp = MLPTranslator(5, ConditionSpec((2, 8, 8), "spatial"), hidden=16).eval()
    c = torch.randn(4, 2, 8, 8)
    with torch.no_grad():
        mlp(c)  # spatial embedders hold ActNorms initialised lazily
        mlp.train()
        mlp(c)
        mlp.eval()
    save(tmp_path / "m.safetensors", mlp)
    loaded, meta = load(tmp_path / "m.safetensors")
    assert meta["kind"] == "mlp"
    assert torch.equal(loaded.sample(c, n=2), mlp.sample(c, n=2))


def test_truncated_file_raises_translator_file_error(tmp_path: Path) -> None:
    flow, _, _ = trained_like_flow()
    path = tmp_path / "t.safetensors"
    save(path, flow)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(TranslatorFileError, match="truncated or corrupted"):
        load(path)
    path.write_bytes(data[:20])
    with pytest.raises(TranslatorFileError, match="truncated or corrupted"):
        read_metadata(path)


def _flip_at(data: bytes, needle: bytes, offset: int = 0) -> bytes:
    i = data.index(needle) + offset
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


@pytest.mark.parametrize("needle,offset,pattern", [
    (b"{", 0, "truncated or corrupted"),               # the header's JSON no longer parses
    (b'"F32"', 2, "truncated or corrupted"),           # a tensor dtype becomes unknown
    (b"n2n-hub-translator", 0, "does not declare"),    # our format marker changes
    (b"format_version", len("format_version") + 2, "corrupted metadata"),  # its ':' in our JSON breaks
])
def test_a_flipped_byte_in_the_header_raises_translator_file_error(
        tmp_path: Path, needle: bytes, offset: int, pattern: str) -> None:
    flow, _, _ = trained_like_flow()
    path = tmp_path / "t.safetensors"
    save(path, flow)
    path.write_bytes(_flip_at(path.read_bytes(), needle, offset))
    with pytest.raises(TranslatorFileError, match=pattern):
        load(path)


def test_a_newer_format_version_asks_to_upgrade(tmp_path: Path) -> None:
    flow, _, _ = trained_like_flow()
    path = tmp_path / "t.safetensors"
    save(path, flow)
    rewrite(path, meta_update={"format_version": FORMAT_VERSION + 1})
    with pytest.raises(TranslatorFileError, match=f"version {FORMAT_VERSION + 1}.*upgrade n2n-hub"):
        load(path)


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    flow, _, _ = trained_like_flow()
    path = tmp_path / "t.safetensors"
    old = os.umask(0o022)
    try:
        save(path, flow)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_file_from_another_module_layout_asks_to_retrain(tmp_path: Path) -> None:
    flow, _, _ = trained_like_flow()
    path = tmp_path / "t.safetensors"
    assert save(path, flow)["arch_version"] == ConditionalINN.arch_version
    rewrite(path, meta_update={"arch_version": ConditionalINN.arch_version - 1})
    with pytest.raises(TranslatorFileError, match="layout version .*train it again"):
        load(path)


def test_missing_or_mismatched_weights_raise_translator_file_error(tmp_path: Path) -> None:
    flow, _, _ = trained_like_flow()
    path = tmp_path / "t.safetensors"
    save(path, flow)
    tensors = load_file(str(path))
    missing = dict(tensors)
    del missing["cond_proj.weight"]
    rewrite(path, tensors=missing)
    with pytest.raises(TranslatorFileError, match="weights do not match"):
        load(path)
    resized = dict(tensors)
    resized["cond_proj.weight"] = torch.zeros(3, 3)
    rewrite(path, tensors=resized)
    with pytest.raises(TranslatorFileError, match="weights do not match"):
        load(path)


def test_unknown_kind_bad_config_and_foreign_files_are_refused(tmp_path: Path) -> None:
    flow, _, _ = trained_like_flow()
    path = tmp_path / "t.safetensors"
    save(path, flow)
    rewrite(path, meta_update={"kind": "spline"})
    with pytest.raises(TranslatorFileError, match="unknown kind 'spline'"):
        load(path)
    rewrite(path, meta_update={"kind": "cinn", "config": {"dim": 5}})
    with pytest.raises(TranslatorFileError, match="invalid cinn config"):
        load(path)
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(TranslatorFileError, match="not an n2n-hub translator"):
        load(tmp_path / "other.safetensors")
    with pytest.raises(TranslatorFileError, match="does not exist"):
        load(tmp_path / "nope.safetensors")


def test_only_modules_with_kind_and_config_can_be_saved(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        save(tmp_path / "x.safetensors", torch.nn.Linear(2, 2))


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    flow, z, c = trained_like_flow()
    path = tmp_path / "t.safetensors"
    save(path, flow)
    save(path, flow)  # overwriting goes through a temp file too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.safetensors"]


def test_a_failing_write_leaves_the_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow, z, c = trained_like_flow()
    path = tmp_path / "t.safetensors"
    save(path, flow)
    before = path.read_bytes()

    def crash_midway(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(translator_file, "save_file", crash_midway)
    other = ConditionalINN(5, ConditionSpec((4,), "vector"), n_blocks=3, hidden=16, seed=4)
    with pytest.raises(OSError, match="disk full"):
        save(path, other)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.safetensors"]
    loaded, _ = load(path)
    assert torch.equal(loaded.residual(z, c), flow.residual(z, c))
