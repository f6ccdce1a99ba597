"""Table generations: which DynamoDB table of a view readers read, and which one a bulk load fills.

A view's items live in one table, its *live generation*. A bulk load (a full sync, or a delta
too large for conditional writes) fills a new table with unconditional BatchWriteItem requests,
then switches readers to it. One item per view in the sync-state table, the *pointer*, says:

    live      the table readers read and every writer writes (the view's first table is
              `<prefix><view>`; later ones `<prefix><view>.g<N>`)
    loading   the table a bulk load is filling, if any: writers write it too
    loader    who loads it, and lease_until: the loader renews the lease while it works; a load
              whose lease ran out (a killed or stopped loader) may be taken over, and on the
              loader's machine one whose loader has exited, at once (bulk.py, by its name)
    retired   tables replaced by a switch, dropped once readers that cached the pointer are done
    serial    grows with every change; every change is conditional on the serial it read

    pushed    the view has been pushed to (set before its first push)
    dirty     a writer wrote while a load was listed (set before it writes anything)
    generation  the last number claimed: table names never repeat
    previous  the table live before the last switch, written too until previous_until

The rules that keep newest-wins without per-item conditions in the load:
0. The loader claims *before* it reads the warehouse: whatever a writer put into the live table
   before the claim is no newer than the rows the load then reads, except pushed items.
1. A writer (push, incremental sync) reads the pointer; if it lists `loading`, it marks the
   pointer `dirty` and stamps its items `_load = <loading table>`. It writes them conditionally
   to every table the pointer lists, live first, then reads the pointer again (consistently).
   If that lists a table it has not written, it marks and stamps anew, writes the live table
   again, and then the new table, until the pointer lists nothing new. So a write that
   overlaps a claim or a switch, even from a writer paused in between, reaches the table readers
   will read, or is in the live table stamped with the load.
2. The loader writes the current rows unconditionally into its table, then *merges*: if the
   pointer says `pushed` or `dirty`, every item of the live table that has no `_build` (pushed)
   or is stamped with this load is put into the new table conditionally (newest wins).
   Unconditional writes may have overwritten a newer item a writer put into the new table; that
   writer marked the pointer and wrote the live table first, so the merge, which starts after
   the unconditional writes, restores it.
3. The switch (`live` = the new table, conditional on the loader still holding the lease) makes
   readers read a table that is complete: never an empty or half-loaded one. Readers trust the
   pointer for READ_CACHE_SECONDS; for RETIRE_AFTER_SECONDS writers still write the old table
   too, so a reader holding the old pointer sees what was written after the switch; then a
   sync drops it (a reader that finds its table gone reads the pointer again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

READ_CACHE_SECONDS = 1.0  # how long a reader trusts the pointer it read
RETIRE_AFTER_SECONDS = 30.0  # an old generation outlives the switch by this long (readers in flight)
DEFAULT_LEASE_SECONDS = 60.0  # a loader renews its lease at a quarter of this
POINTER_PREFIX = "@generations/"  # sync-state keys are `<view>#<hash>`: no view name starts with '@'


@dataclass(frozen=True)
class Generations:
    live: str
    loading: str | None = None
    loader: str | None = None
    lease_until: float = 0.0
    retired: tuple[tuple[str, float], ...] = ()  # (table, drop after; epoch seconds)
    serial: int = 0  # 0: no pointer stored (the view's first table, or never synced)
    pushed: bool = False  # the view has been pushed to: a load merges pushed items
    dirty: bool = False  # a writer wrote while `loading` was listed: the load merges what it stamped
    generation: int = 0  # the number of the last generation claimed (numbers never repeat)
    previous: str | None = None  # the table live before the last switch: written too until previous_until
    previous_until: float = 0.0

    def targets(self, now: float | None = None) -> tuple[str, ...]:
        """The tables a writer writes, live first: also the one a load fills, and for a while
        after a switch the one readers read before it (a reader may still hold that pointer)."""
        recent = self.previous and self.previous_until > (time.time() if now is None else now)
        return (self.live, *([self.loading] if self.loading else []), *([self.previous] if recent else []))

    def load_in_progress(self, now: float | None = None) -> bool:
        return bool(self.loading) and self.lease_until > (time.time() if now is None else now)

    def claimed(self, base: str, loader: str, lease_seconds: float, pushed: bool = False) -> "Generations":
        """A claim of the next generation by `loader`; a load left behind (its lease ran out, or its
        loader exited) is retired.
        pushed: the live table may hold pushed items though no pointer said so (made before 0.3)."""
        now = time.time()
        retired = self.retired + (((self.loading, now),) if self.loading else ())
        return replace(self, loading=f"{base}.g{self.generation + 1}", loader=loader, lease_until=now + lease_seconds,
                       retired=retired, dirty=False, pushed=self.pushed or pushed, generation=self.generation + 1,
                       serial=self.serial + 1)

    def switched(self) -> "Generations":
        """`loading` made live; the old live table retired once readers that cached it are done."""
        until = time.time() + RETIRE_AFTER_SECONDS
        return replace(self, live=self.loading, loading=None, loader=None, lease_until=0.0, previous=self.live,
                       previous_until=until, retired=self.retired + ((self.live, until),), serial=self.serial + 1)

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
        return [table for table, after in self.retired if after <= now and table not in self.targets(now)]

    def without(self, dropped: list[str]) -> "Generations | None":
        """The pointer without these retired tables (None if none of them is listed any more)."""
        if not any(table in dropped for table, _ in self.retired):
            return None
        return replace(self, retired=tuple((t, a) for t, a in self.retired if t not in dropped), serial=self.serial + 1)

    def as_state(self) -> dict:
        return {"live": self.live, "loading": self.loading or "", "loader": self.loader or "",
                "lease_until": self.lease_until, "retired": [[t, a] for t, a in self.retired], "serial": self.serial,
                "pushed": self.pushed, "dirty": self.dirty, "generation": self.generation,
                "previous": self.previous or "", "previous_until": self.previous_until}

    @classmethod
    def from_state(cls, state: dict) -> "Generations":
        return cls(live=str(state["live"]), loading=state.get("loading") or None, loader=state.get("loader") or None,
                   lease_until=float(state.get("lease_until") or 0), serial=int(state.get("serial") or 0),
                   pushed=bool(state.get("pushed")), dirty=bool(state.get("dirty")),
                   generation=int(state.get("generation") or 0), previous=state.get("previous") or None,
                   previous_until=float(state.get("previous_until") or 0),
                   retired=tuple((str(t), float(a)) for t, a in state.get("retired") or []))


def pointer_key(view: str) -> str:
    return POINTER_PREFIX + view

