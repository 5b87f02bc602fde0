"""The ``bert`` expert: packaged MiniLM offline, local folders, hub ids from the HF cache, integrity."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from n2n_hub.errors import CacheError, IntegrityError, MissingWeightsError, OfflineError

from n2n_bert import DEFAULT_VARIANT, bert_spec
from n2n_bert import checkpoints
from n2n_bert.expert import BertExpert

SENTENCES = [
    "A black bear is walking through the woods",
    "a photo of a goldfish",
    "  Two people on a paddle boat in the water ",
    "x",
    "A man riding skis down a snow covered slope, " * 30,  # longer than max_seq_length (256 tokens)
]
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "the", "bear", "dog",
              "goldfish", "walking", "in", "woods", "##s", "is", "black"]


@pytest.fixture(autouse=True)
def offline_home(tmp_path, monkeypatch):
    """No network, an empty Hugging Face cache and hub home per test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("N2N_HUB_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def minilm() -> BertExpert:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return BertExpert(bert_spec(), None)


def make_tiny_bert(folder: Path, seed: int = 0, weights: str = "safetensors") -> Path:
    """A 2-layer, 32-d random BERT with a word-piece tokenizer, saved as save_pretrained would."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(str(folder))
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(seed)
    model = BertModel(config).eval()
    config.save_pretrained(str(folder))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if weights == "safetensors":
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, folder / "pytorch_model.bin")
    return folder


def lay_out_hf_cache(cache: Path, repo_id: str, files_from: Path) -> Path:
    """The Hugging Face cache layout: blobs named by content, a snapshot of symlinks, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for f in files_from.rglob("*"):
        if f.is_file():
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            blob = repo / "blobs" / digest
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, blob)
            link = snapshot / f.relative_to(files_from)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def reference_mean_pool(folder: Path, texts: list[str]) -> torch.Tensor:
    from transformers import AutoTokenizer, BertModel

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = BertModel.from_pretrained(str(folder)).eval()
    batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * m).sum(1) / m.sum(1)


# -- the packaged default -----------------------------------------------------------------
@pytest.mark.slow
def test_packaged_minilm_matches_sentence_transformers_offline(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(checkpoints.packaged_dir()), device="cpu").encode(
        SENTENCES, convert_to_tensor=True)
    ours = minilm.encode(SENTENCES)
    assert ours.shape == (len(SENTENCES), 384)
    assert torch.allclose(ours, reference.cpu(), atol=1e-5)


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_default_variant_is_384_d_l2_normalised_and_truncates_at_256_tokens(minilm):
    z = minilm.encode(SENTENCES)
    assert minilm.variant == DEFAULT_VARIANT
    assert minilm.representation_for() == bert_spec().representation
    assert torch.allclose(z.norm(dim=1), torch.ones(len(SENTENCES)), atol=1e-5)
    assert minilm.sentence.pooling == "mean" and minilm.sentence.normalize and minilm.max_length == 256


def test_encoding_does_not_depend_on_batching_or_order(minilm):
    short = SENTENCES[:4]
    whole = minilm.encode(short)
    pieces = torch.cat([minilm.encode(s) for s in reversed(short)]).flip(0)
    assert torch.allclose(whole, pieces, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_a_changed_packaged_file_is_an_integrity_error(tmp_path, monkeypatch):
    fake = tmp_path / "model"
    for rel in checkpoints.PACKAGED_SHA256:
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).symlink_to(checkpoints.packaged_dir() / rel)
    (fake / "config.json").unlink()
    (fake / "config.json").write_text((checkpoints.packaged_dir() / "config.json").read_text().replace("384", "385"))
    monkeypatch.setattr(checkpoints, "packaged_dir", lambda: fake)
    with pytest.raises(IntegrityError, match=r"config\.json.*reinstall"):
        BertExpert(bert_spec(), None)


# -- other checkpoints --------------------------------------------------------------------
def test_local_folder_loads_and_reports_its_own_hidden_size(tmp_path):
    folder = make_tiny_bert(tmp_path / "tiny")
    expert = BertExpert(bert_spec(), str(folder))
    texts = ["a photo of the goldfish", "a black bear is walking in the woods"]
    z = expert.encode(texts)
    assert expert.representation_for().shape == (32,)
    # No modules.json: SBERT's default, mean pooling without normalisation (as net2net used).
    assert torch.allclose(z, reference_mean_pool(folder, texts), atol=1e-5)
    assert not torch.allclose(z.norm(dim=1), torch.ones(2))


def test_hub_id_is_served_from_the_hugging_face_cache_offline(tmp_path):
    folder = make_tiny_bert(tmp_path / "tiny")
    lay_out_hf_cache(tmp_path / "hf-cache", "tiny-org/tiny-bert", folder)
    from_hub = BertExpert(bert_spec(), "tiny-org/tiny-bert")
    from_dir = BertExpert(bert_spec(), str(folder))
    assert from_hub.checkpoint.source == "hub"
    assert torch.allclose(from_hub.encode(["a dog"]), from_dir.encode(["a dog"]))
    assert from_hub.fingerprint() == from_dir.fingerprint()  # same weights, wherever they live


def test_pytorch_model_bin_alone_loads_like_safetensors(tmp_path):
    st = BertExpert(bert_spec(), str(make_tiny_bert(tmp_path / "st", seed=3)))
    pt = BertExpert(bert_spec(), str(make_tiny_bert(tmp_path / "bin", seed=3, weights="bin")))
    assert torch.allclose(st.encode(["the dog"]), pt.encode(["the dog"]))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    folder = make_tiny_bert(tmp_path / "evil", weights="bin")
    marker = tmp_path / "payload-ran"
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"embeddings.word_embeddings.weight": _Payload(marker)}, f, protocol=2)
    with pytest.raises(CacheError, match="refusing"):
        BertExpert(bert_spec(), str(folder))
    assert not marker.exists()


def test_fingerprint_follows_the_weights(tmp_path):
    a = BertExpert(bert_spec(), str(make_tiny_bert(tmp_path / "a", seed=1)))
    b = BertExpert(bert_spec(), str(make_tiny_bert(tmp_path / "b", seed=2)))
    assert a.fingerprint() != b.fingerprint()


def test_offline_absent_hub_id_says_how_to_provide_it():
    with pytest.raises(OfflineError) as err:
        BertExpert(bert_spec(), "some-org/absent-bert")
    msg = str(err.value)
    assert "hf download some-org/absent-bert" in msg and "bert@/path/to/folder" in msg
    assert isinstance(err.value, MissingWeightsError)


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MissingWeightsError, match="does not exist"):
        BertExpert(bert_spec(), str(tmp_path / "nowhere"))
