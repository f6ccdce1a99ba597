"""Table generations: which DynamoDB table of a view readers read, and which one a bulk load fills.

A view's items live in one table, its *live generation*. A bulk load (a full sync, or a delta
too large for conditional writes) fills a new table with unconditional BatchWriteItem requests,
then switches readers to it. One item per view in the sync-state table, the *pointer*, says:

    live      the table readers read and every writer writes (the view's first table is
              `<prefix><view>`; later ones `<prefix><view>.g<N>`)
    loading   the table a bulk load is filling, if any: writers write it too
    loader    who loads it, and lease_until: the loader renews the lease while it works; a load
              whose lease ran out (a killed or stopped loader) may be taken over
    retired   tables replaced by a switch, dropped once readers that cached the pointer are done
    serial    grows with every change; every change is conditional on the serial it read

    pushed    the view has been pushed to (set before its first push)
    dirty     a writer wrote the loading table (set before it writes there)

The rules that keep newest-wins without per-item conditions in the load:
1. A writer (push, incremental sync) reads the pointer, stamps its items with the time
   (`_written_at`), writes them conditionally to `live`, marks the pointer `dirty` and writes
   them to `loading` if there is one, then reads the pointer again (consistently). If it lists a
   table the writer has not written, the writer stamps its items anew, writes them to the live
   table again, and then to the new table, until the pointer lists nothing new. So every write
   that overlaps a claim or a switch, even from a writer paused in between, reaches the table
   readers will read, or is in the live table stamped after the claim.
2. The loader claims (sets `loading`, conditional on the serial), creates the table, writes the
   warehouse's current rows unconditionally, then *merges*: if the pointer says `pushed` or
   `dirty`, every item of the live table pushed (no `_build`) or stamped since the claim (less
   CLOCK_SKEW_SECONDS) is put into the new table conditionally (newest wins). Unconditional
   writes may have overwritten a newer item a writer put into the new table; that writer marked
   the pointer dirty and wrote the live table first, so the merge, which starts after the
   unconditional writes, restores it; a writer that marks it later writes after the merge began,
   over the loaded rows.
3. The switch (`live` = the new table, conditional on the loader still holding the lease) makes
   readers read a table that is complete: never an empty or half-loaded one. Readers cache the
   pointer for at most READ_CACHE_SECONDS; the old table is dropped RETIRE_AFTER_SECONDS later.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace

READ_CACHE_SECONDS = 1.0  # how long a reader trusts the pointer it read
RETIRE_AFTER_SECONDS = 30.0  # an old generation outlives the switch by this long (readers in flight)
DEFAULT_LEASE_SECONDS = 60.0  # a loader renews its lease at a quarter of this
POINTER_PREFIX = "@generations/"  # sync-state keys are `<view>#<hash>`: no view name starts with '@'
_GENERATION = re.compile(r"\.g([0-9]+)$")


@dataclass(frozen=True)
class Generations:
    live: str
    loading: str | None = None
    loader: str | None = None
    lease_until: float = 0.0
    retired: tuple[tuple[str, float], ...] = ()  # (table, drop after; epoch seconds)
    serial: int = 0  # 0: no pointer stored (the view's first table, or never synced)
    pushed: bool = False  # the view has been pushed to: a load merges pushed items
    dirty: bool = False  # a writer wrote the loading table: the load merges writes made since it began

    def targets(self) -> tuple[str, ...]:
        """The tables a writer writes, live first."""
        return (self.live, self.loading) if self.loading else (self.live,)

    def load_in_progress(self, now: float | None = None) -> bool:
        return bool(self.loading) and self.lease_until > (time.time() if now is None else now)

    def claimed(self, base: str, loader: str, lease_seconds: float) -> "Generations":
        """A claim of the next generation by `loader`; a load left behind (lease ran out) is retired."""
        now = time.time()
        retired = self.retired + (((self.loading, now),) if self.loading else ())
        numbers = [_number(name) for name in (self.live, self.loading, *[t for t, _ in self.retired]) if name]
        table = f"{base}.g{max(numbers, default=0) + 1}"
        return replace(self, loading=table, loader=loader, lease_until=now + lease_seconds, retired=retired,
                       dirty=False, serial=self.serial + 1)

    def switched(self) -> "Generations":
        """`loading` made live; the old live table retired."""
        retired = self.retired + ((self.live, time.time() + RETIRE_AFTER_SECONDS),)
        return replace(self, live=self.loading, loading=None, loader=None, lease_until=0.0, retired=retired,
                       serial=self.serial + 1)

    def released(self) -> "Generations":
        """The load given up: its table retired at once."""
        return replace(self, loading=None, loader=None, lease_until=0.0,
                       retired=self.retired + ((self.loading, time.time()),), serial=self.serial + 1)

    def marked_pushed(self) -> "Generations":
        return replace(self, pushed=True, serial=self.serial + 1)

    def marked_dirty(self, loading: str) -> "Generations | None":
        """Marked as written during the load of `loading` (None: nothing to change)."""
        return replace(self, dirty=True, serial=self.serial + 1) if self.loading == loading and not self.dirty else None

    def needs_merge(self) -> bool:
        """Whether the live table may hold anything a load has not: pushed items, or writes made
        during the load."""
        return self.pushed or self.dirty

    def renewed(self, lease_seconds: float) -> "Generations":
        return replace(self, lease_until=time.time() + lease_seconds, serial=self.serial + 1)

    def due_for_drop(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return [table for table, after in self.retired if after <= now and table not in self.targets()]

    def without(self, dropped: list[str]) -> "Generations":
        return replace(self, retired=tuple((t, a) for t, a in self.retired if t not in dropped), serial=self.serial + 1)

    def as_state(self) -> dict:
        return {"live": self.live, "loading": self.loading or "", "loader": self.loader or "",
                "lease_until": self.lease_until, "retired": [[t, a] for t, a in self.retired], "serial": self.serial,
                "pushed": self.pushed, "dirty": self.dirty}

    @classmethod
    def from_state(cls, state: dict) -> "Generations":
        return cls(live=str(state["live"]), loading=state.get("loading") or None, loader=state.get("loader") or None,
                   lease_until=float(state.get("lease_until") or 0), serial=int(state.get("serial") or 0),
                   pushed=bool(state.get("pushed")), dirty=bool(state.get("dirty")),
                   retired=tuple((str(t), float(a)) for t, a in state.get("retired") or []))


def pointer_key(view: str) -> str:
    return POINTER_PREFIX + view


def _number(table: str) -> int:
    match = _GENERATION.search(table)
    return int(match.group(1)) if match else 0
