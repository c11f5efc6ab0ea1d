-- A holder that began to stop (SIGTERM: its streams drain, then it releases the lease) records by when
-- it will have released the lease, so that a start with its gateway id meanwhile waits for the release
-- instead of being refused as if the holder were serving (audit Q-8). Null while it serves, and in rows
-- written before V11. See ton-billing/README.md, "Several gateways".
ALTER TABLE gateway_leases ADD COLUMN stopping_until_micros BIGINT;
