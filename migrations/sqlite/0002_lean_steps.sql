-- acidic 0002: fewer statements and round trips per step (SQLite).
-- Nothing changes on SQLite. On PostgreSQL this migration drops the journal's and the context's
-- foreign keys (purge now deletes a run's journal and context explicitly, on both databases) and
-- adds the function that locks a run in the round trip of its BEGIN. SQLite keeps its foreign
-- keys: their checks run in-process and cost no round trip.
SELECT 1;
