-- Cart additions in the web shop, one event per item added, pushed as they happen (POST /push,
-- `python replay_events.py` replays a day of them). A streaming view: its aggregates are declared
-- once in _live.yml (`stream:`); this macro computes them offline from the landed events, by the
-- rule the online store serves them with at request time.
{{ featurestore.stream_windows() }}
