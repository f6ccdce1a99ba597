"""The table-generation pointer's transitions (online/generations.py), without a store."""

import time

from featurestore.online.generations import Generations, pointer_key


def test_a_claim_names_the_next_generation_and_retires_an_abandoned_load():
    first = Generations(live="fs_things")
    claim = first.claimed("fs_things", "me", 60)
    assert (claim.live, claim.loading, claim.loader, claim.serial) == ("fs_things", "fs_things.g1", "me", 1)
    assert claim.targets() == ("fs_things", "fs_things.g1") and claim.load_in_progress()
    assert not claim.load_in_progress(now=time.time() + 61)
    again = claim.claimed("fs_things", "other", 60)  # after the lease ran out
    assert again.loading == "fs_things.g2" and [t for t, _ in again.retired] == ["fs_things.g1"]
    assert again.due_for_drop() == ["fs_things.g1"]


def test_a_switch_makes_the_load_live_and_retires_the_old_table_for_a_while():
    switched = Generations(live="fs_things").claimed("fs_things", "me", 60).switched()
    assert (switched.live, switched.loading, switched.targets()) == ("fs_things.g1", None, ("fs_things.g1", "fs_things"))
    assert switched.targets(now=time.time() + 31) == ("fs_things.g1",)  # the previous table: written for a while
    assert switched.due_for_drop() == [] and switched.due_for_drop(now=time.time() + 31) == ["fs_things"]
    assert switched.without(["fs_things"]).retired == ()
    assert switched.claimed("fs_things", "me", 60).loading == "fs_things.g2"  # numbers never repeat


def test_a_released_load_is_retired_at_once_and_the_state_round_trips():
    released = Generations(live="fs_things").claimed("fs_things", "me", 60).released()
    assert released.loading is None and released.due_for_drop() == ["fs_things.g1"]
    assert Generations.from_state(released.as_state()) == released
    assert pointer_key("things") == "@generations/things"
