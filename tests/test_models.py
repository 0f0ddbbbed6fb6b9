import pytest
import torch
import torch.nn.functional as F

from riftkit.models import EMBEDDED, load_classifier, load_encoder, save_classifier
from riftkit.models.classifier import resolve_pooling

from .conftest import NLI, SENTIMENT

SENTENCES = [(("a", "truly", "great", "film"),), (("dull", "and", "boring"),), (("not", "bad", "at", "all", "!"),), (("worst", "movie", "ever"),)]


def test_embedded_minilm_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = load_encoder(EMBEDDED)
    assert (encoder.config.num_hidden_layers, encoder.config.hidden_size, encoder.config.vocab_size) == (6, 384, 30522)
    assert sum(p.numel() for p in encoder.parameters()) == pytest.approx(22.7e6, rel=0.01)
    first3 = load_encoder(EMBEDDED, num_layers=3)
    assert len(first3.encoder.layer) == 3
    # keeping k layers keeps the pre-trained weights of those layers
    torch.testing.assert_close(first3.encoder.layer[2].output.dense.weight, encoder.encoder.layer[2].output.dense.weight)
    with pytest.raises(ValueError, match="num_layers=9"):
        load_encoder(EMBEDDED, num_layers=9)


def test_pretrained_weights_are_really_pretrained():
    """The embedded encoder separates related from unrelated sentences, a random one does not care."""
    from riftkit.models import load_tokenizer

    tokenizer, encoder = load_tokenizer(), load_encoder().eval()
    batch = tokenizer([["a", "cat", "sits", "on", "the", "mat"], ["a", "kitten", "is", "sitting", "on", "a", "rug"], ["stock", "markets", "fell", "sharply", "today"]], is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    mean = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert (mean[0] @ mean[1]) > (mean[0] @ mean[2]) + 0.2


def test_inputs_embeds_path_equals_token_ids(make_tiny):
    model = make_tiny().eval()
    batch = model.encode(SENTENCES)
    embeds = model.word_embeddings(batch["input_ids"])
    torch.testing.assert_close(model(**batch), model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]))
    embeds = embeds.detach().requires_grad_(True)
    model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).sum().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0


def test_pair_encoding_and_word_alignment(make_tiny):
    model = make_tiny(NLI)
    batch = model.encode([(("a", "man", "sleeps"), ("he", "is", "unconscionably", "tired"))])
    assert batch["token_type_ids"][0].tolist().count(1) > 0
    assert batch.sequence_ids(0).count(1) + 1 == batch["token_type_ids"][0].sum().item()  # + the final [SEP]
    hypothesis_words = {w for w, s in zip(batch.word_ids(0), batch.sequence_ids(0)) if s == 1}
    assert hypothesis_words == {0, 1, 2, 3}
    assert model(**batch).shape == (1, 3)


def test_truncation_to_max_length(make_tiny):
    model = make_tiny(max_length=8)
    batch = model.encode([(tuple(["word"] * 50),)])
    assert batch["input_ids"].shape[1] == 8


def test_tiny_encoder_overfits_a_small_batch(make_tiny):
    torch.manual_seed(0)
    model = make_tiny().train()
    batch = model.encode(SENTENCES)
    labels = torch.tensor([1, 0, 1, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(**batch), labels)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < 0.05 < first
    assert model(**batch).argmax(-1).tolist() == labels.tolist()


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean"])
def test_save_then_load_gives_identical_logits(make_tiny, tmp_path, pooling):
    model = make_tiny(pooling=pooling, seed=3).eval()
    with torch.no_grad():
        model.head[-1].bias.add_(0.5)  # a head that differs from any fresh initialisation
    folder = save_classifier(model, tmp_path / "m")
    assert {p.name for p in folder.iterdir()} == {"riftkit.json", "head.safetensors", "encoder"}
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    loaded = load_classifier(folder)
    assert loaded.spec == model.spec and not loaded.training
    batch = model.encode(SENTENCES)
    with torch.no_grad():
        assert torch.equal(model(**batch), loaded(**loaded.encode(SENTENCES)))


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="riftkit.json"):
        load_classifier(tmp_path)
    (tmp_path / "riftkit.json").write_text("{not json")
    with pytest.raises(ValueError, match="riftkit.json"):
        load_classifier(tmp_path)


def test_pooling_resolution(make_tiny):
    model = make_tiny()
    assert resolve_pooling(model.encoder, "auto") == "pooler"
    model.encoder.pooler = None
    assert resolve_pooling(model.encoder, "auto") == "cls"
    with pytest.raises(ValueError, match="no pooler"):
        resolve_pooling(model.encoder, "pooler")


def test_predict_proba_restores_mode_and_keeps_order(make_tiny):
    model = make_tiny().train()
    probs = model.predict_proba(SENTENCES, batch_size=3)
    assert model.training and probs.shape == (4, 2)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))
    single = torch.cat([model.predict_proba([s]) for s in SENTENCES])
    torch.testing.assert_close(probs, single, atol=1e-5, rtol=1e-4)
