-- The data directory the lease's holder holds locked while it runs (review U, U-2): a random id kept in
-- the directory, recorded beside the holder. A start that holds that directory's lock now knows the
-- holder is gone, whatever its host or PID namespace: a container restarted in place gets a new PID
-- namespace, and its pid said nothing. Null where the holder had no data dir (the demo), and in rows
-- written before V13 (judged by host and process, as then).
ALTER TABLE gateway_leases ADD COLUMN holder_data_dir VARCHAR(64);
-- Set by a holder that stopped and left its lease to expire, instead of releasing it, because it kept
-- settlements for its next start (review R, R-1): a start meanwhile is told so at once instead of
-- waiting for a release that will not come (review U, U-4). Null otherwise.
ALTER TABLE gateway_leases ADD COLUMN kept_at_micros BIGINT;
