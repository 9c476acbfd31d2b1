"""What a write owes once its version is committed, and what a dead writer left.

An intent (:class:`dedup.index.records.Intent`) is either a version being written, taken back
here with its entries if its writer never committed it, or what a committed version owes:
the old version's entries out, flags raised on the documents it matched, flags refreshed on
those the change may have moved (the few holders each removal leaves). :class:`Owed` does
either, for the writer that left it (a job's retry, by its token) or for any writer once the
intent's lease is over.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis

from dedup.index import layout, records, scripts, versions
from dedup.index.access import store_error
from dedup.index.entries import REMOVE, REMOVE_PARAGRAPH, Batch
from dedup.index.layout import BANDS, CONTENT, PARAGRAPHS, PIECES
from dedup.index.plan import Plan
from dedup.index.reads import Reads
from dedup.index.records import Intent, Record
from dedup.index.scripts import Call

FLAGS_PER_CALL = 500
"""Flag operations per call of ``flags.lua`` at most, so that no call holds the server long."""


class Owed(Reads):
    """Finishing and taking back intents, and bringing flags in line with reports."""

    def _recover(
        self,
        found: list[tuple[int, bytes]],
        token: str,
        *,
        stale_only: bool,
        replaced: Iterable[int] = (),
    ) -> None:
        """Take back or finish the intents of this writer (``token``) and those older than
        the lease, whoever left them, and finish what the versions ``replaced`` owe."""
        cutoff = time.time() - layout.INTENT_LEASE
        finishing = set(replaced)
        mine = []
        for serial, packed in found:
            intent = records.unpack_intent(packed)
            if (
                intent.at < cutoff
                or (not stale_only and intent.token == token)
                or (intent.kind == records.OWED and serial in finishing)
            ):
                mine.append((serial, intent))
        self._finish(mine)

    def recover(self) -> int:
        """Finish or take back every intent older than the lease, in every shard (what
        writers that died left where nobody wrote since); returns how many there were."""
        try:
            found = scripts.run(
                self.client, [versions.intents(self.keys, g) for g in range(self.keys.shards.count)]
            )
            intents = [(s, i) for shard in found for s, i in shard.items()]
            before = len(intents)
            self._recover(intents, "", stale_only=True)
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return before

    def _finish(self, intents: list[tuple[int, Intent]]) -> None:
        """Take back versions never committed (their entries out); do what committed ones
        owe (the old version's entries out, flags raised, flags refreshed); drop the intents.
        Each step may run again: a crash here leaves the intent, and the next run redoes it."""
        if not intents:
            return
        batch = self._batch()
        refresh: set[int] = set()
        removals: list[int] = []
        """Tickets of removals, each answering the holders left when few are (whose flags
        the removal may move)."""
        raised: list[tuple[int, str]] = []
        for serial, intent in intents:
            if intent.kind == records.WRITING:
                if intent.record is not None:
                    removals += self._take_out(batch, intent.record, serial)
                continue
            if intent.old is not None:
                removals += self._take_out(batch, intent.old, intent.old_serial)
            raised += [(s, flag) for flag, serials in intent.raised.items() for s in serials]
            refresh.update(intent.refresh)
        # the flags raised need no answer of the removals: set in the same round trip
        for call in self._flag_calls((s, flag, True) for s, flag in raised):
            batch.call(call)
        answers = batch.send(self.client)
        refresh.update(s for t in removals for s in answers[t].serials)
        self.refresh_flags(refresh)
        done: dict[int, list[tuple[int, bool]]] = {}
        for serial, intent in intents:
            taken_back = intent.kind == records.WRITING
            done.setdefault(self.keys.shards.of(serial), []).append((serial, taken_back))
        scripts.run(
            self.client,
            [versions.drop_intents(self.keys, shard, each) for shard, each in done.items()],
        )

    def _take_out(self, batch: Batch, record: Record, serial: int) -> list[int]:
        """Queue the removal of a version from every entry its record names; the tickets."""
        entries = self.entries(record)
        return [
            *batch.updates(BANDS, entries.bands, REMOVE, serial),
            *batch.updates(CONTENT, entries.content, REMOVE, serial),
            *batch.updates(PARAGRAPHS, entries.paragraphs, REMOVE_PARAGRAPH, serial),
            *batch.updates(PIECES, entries.pieces, REMOVE, serial),
        ]

    def refresh_flags(self, serials: set[int]) -> None:
        """Bring the corpus-dependent flags of these document versions in line with reports."""
        if not serials:
            return
        records = self.records(sorted(serials))
        reports = self.reports_of(records)
        self._set_flags(
            (serial, name, name in report["flags"])
            for (serial, _), report in zip(records, reports, strict=True)
            for name in ("exact_duplicate", "near_duplicate", "boilerplate")
        )

    def _set_flags(self, bits: Iterable[tuple[int, str, bool]]) -> None:
        """Set or clear flag bits (each once however often asked), in one round trip."""
        scripts.run(self.client, self._flag_calls(bits))

    def _flag_calls(self, bits: Iterable[tuple[int, str, bool]]) -> list[Call[Any]]:
        """The calls that set or clear flag bits (each once however often asked), of at most
        :data:`FLAGS_PER_CALL` operations each."""
        by_shard: dict[int, list[tuple[int, str, bool]]] = {}
        for bit in dict.fromkeys(bits):
            by_shard.setdefault(self.keys.shards.of(bit[0]), []).append(bit)
        return [
            versions.set_flags(self.keys, g, shard[at : at + FLAGS_PER_CALL])
            for g, shard in by_shard.items()
            for at in range(0, len(shard), FLAGS_PER_CALL)
        ]

    def _by_shard(self, plans: dict[int, Plan]) -> dict[int, list[int]]:
        """The plans by their documents' shards, in their order."""
        by_shard: dict[int, list[int]] = {}
        for i, plan in plans.items():
            shard = self.keys.shards.of_key(layout.IDS, plan.id.key)
            by_shard.setdefault(shard, []).append(i)
        return by_shard

    def _batch(self) -> Batch:
        return Batch(
            self.keys,
            self.depths,
            boilerplate_at=self.settings.boilerplate_min_documents,
            few=self.settings.boilerplate_min_documents,
        )
