"""Short documents: signed over single words, so that a copy with a word or two edited
still matches, while longer documents keep their 3-word shingles bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import redis
from datasketch import MinHash

from dedup.errors import SettingsMismatchError
from dedup.index import layout
from dedup.index.meta import signature_settings
from dedup.index.store import Store
from dedup.pipeline import text
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.settings import Settings
from tests.helpers import article, as_html

SETTINGS = Settings()
BEFORE = SETTINGS.replace(short_document_words=0)
"""What every document got before the setting: ``shingle_words`` whatever its length."""
SENTENCE = (
    "The council approved the budget for the new river bridge on Tuesday evening after a "
    "long debate."
)
COPY = "The council approved the budget for the river bridge on Tuesday night after a long debate!"


def similarity(first: str, second: str, settings: Settings) -> float:
    """The share of equal values of two documents' signatures: their Jaccard estimate."""
    one, two = (
        analyse(Document("t", f"<p>{t}</p>"), settings).document_signature()
        for t in (first, second)
    )
    assert one is not None and two is not None
    return float(np.mean(one == two))


def test_a_short_copy_with_two_edits_is_still_alike() -> None:
    """A word dropped and one changed in 18 words: alike over single words, not over 3-word
    shingles."""
    assert similarity(SENTENCE, COPY, SETTINGS) >= 0.7
    assert similarity(SENTENCE, COPY, BEFORE) < 0.5


def test_unrelated_short_texts_stay_apart() -> None:
    """Two unrelated sentences share a few common words, far from a near duplicate."""
    other = "Rain is expected over the coast tomorrow morning, with strong winds from the west."
    assert similarity(SENTENCE, other, SETTINGS) < 0.3


def test_a_short_signature_is_the_minhash_of_its_words() -> None:
    """The signature of a short document equals datasketch's MinHash of its distinct words."""
    found = analyse(Document("t", f"<p>{SENTENCE}</p>"), SETTINGS).document_signature()
    reference = MinHash(SETTINGS.num_perm, seed=SETTINGS.seed, hashfunc=text.shingle_hash_of_text)
    for word in text.words(SENTENCE):
        reference.update(word.encode())
    assert reference.hashvalues.tolist() == np.asarray(found).tolist()


def test_longer_documents_keep_their_signatures() -> None:
    """Over the limit nothing changes: the same signatures as before the setting."""
    document = Document("t", as_html(article(11)))
    assert (
        analyse(document, SETTINGS).shingle_signatures
        == analyse(document, BEFORE).shingle_signatures
    ).all()


def test_an_index_from_before_the_setting_takes_writes_without_it(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """An index whose settings were recorded before short_document_words existed takes
    writers with it at 0, and refuses the others, saying which value it needs."""
    recorded = signature_settings(settings.replace(short_document_words=0), layout.SERVER_SHARDS)
    assert "short_document_words" not in recorded
    store = Store(redis_client, settings)
    redis_client.hset(store.keys.meta, "signature", json.dumps(recorded, sort_keys=True))
    Store(redis_client, settings.replace(short_document_words=0)).check_settings()
    with pytest.raises(SettingsMismatchError, match="short_document_words=0 \\(ours 60\\)"):
        store.check_settings()
