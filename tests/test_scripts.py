"""Words by script: combining marks stay in their word, scripts without spaces are cut into
pairs of letter clusters, and every other text keeps its words byte for byte."""

from __future__ import annotations

import json
import unicodedata

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from dedup.errors import SettingsMismatchError
from dedup.index import layout
from dedup.index.meta import signature_settings
from dedup.index.store import Store
from dedup.pipeline import scripts, text
from dedup.pipeline.analysis import analyse, split_words
from dedup.pipeline.document import Document
from dedup.settings import Settings

SETTINGS = Settings()
BEFORE = SETTINGS.replace(script_words=False)
THAI = "รถบัสเย็นชิงหรือแรงงานบริษัทแก้เศษอาหาร"
"""Thai words run together: รถบัส เย็น ชิง หรือ แรงงาน บริษัท แก้ เศษ อาหาร."""


def test_marks_stay_in_their_word() -> None:
    """Hindi vowel signs and viramas no longer cut a word into pieces."""
    assert ["हिन्दी", "भाषा"] == split_words(["हिन्दी भाषा"], SETTINGS)[0]
    assert len(split_words(["हिन्दी भाषा"], BEFORE)[0]) > 2


def test_vowelled_arabic_keeps_its_words() -> None:
    """Arabic vowel marks are part of the word they sit on."""
    assert 3 == len(split_words(["كَتَبَ الوَلَدُ الدَّرْسَ"], SETTINGS)[0])


def test_thai_is_cut_into_pairs_of_letter_clusters() -> None:
    """A Thai phrase without spaces becomes overlapping pairs of clusters (a letter and its
    marks): a change in one word touches only the pairs around it."""
    found = scripts.script_words(THAI)
    assert ["รถ", "ถบั", "บัส"] == found[:3]
    changed = scripts.script_words(THAI.replace("แรงงาน", "ทะเล"))
    assert len(set(found) & set(changed)) / len(set(found) | set(changed)) > 0.6
    # the plain rule cut the phrase only where marks stood, across words
    assert ["รถบ", "สเย"] == text.words(THAI)[:2]


def test_one_cluster_alone_is_a_word() -> None:
    """A single Lao or Khmer letter between spaces is a word of its own."""
    assert ["ກ", "ok"] == scripts.script_words("ກ ok")


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Mn", "Mc", "Me"))))
def test_other_text_keeps_its_words(paragraph: str) -> None:
    """Text without marks or a script without spaces gets exactly the plain rule's words."""
    if scripts.needs_scripts(paragraph):
        return
    plain = text.document_words([paragraph])
    assert plain is scripts.resegment([paragraph], plain)


def test_script_words_equal_the_plain_rule_where_nothing_needs_them() -> None:
    """Latin with accents, Cyrillic, Chinese and Korean: the same words either way."""
    sample = "Çà et là, Ёлки-палки 東京タワー 서울 café_2 x² ﬁn"
    folded = unicodedata.normalize("NFKC", sample).casefold()
    assert text.words(sample) == scripts.script_words(folded)


def test_documents_in_other_scripts_keep_their_signatures() -> None:
    """A German and Russian page analyses to the same signatures with or without the rule."""
    html = "<p>Grüße aus Köln, sagte die Bürgermeisterin.</p><p>Привет из Москвы, сказал мэр.</p>"
    new, old = analyse(Document("t", html), SETTINGS), analyse(Document("t", html), BEFORE)
    assert (new.shingle_signatures == old.shingle_signatures).all()
    assert new.fingerprints == old.fingerprints


def test_an_index_from_before_the_setting_takes_writes_without_it(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """An index recorded before script_words existed takes writers with it off, and refuses
    the others, saying which value it needs."""
    recorded = signature_settings(settings.replace(script_words=False), layout.SERVER_SHARDS)
    assert "script_words" not in recorded
    store = Store(redis_client, settings)
    redis_client.hset(store.keys.meta, "signature", json.dumps(recorded, sort_keys=True))
    Store(redis_client, settings.replace(script_words=False)).check_settings()
    with pytest.raises(SettingsMismatchError, match="script_words=false \\(ours true\\)"):
        store.check_settings()
