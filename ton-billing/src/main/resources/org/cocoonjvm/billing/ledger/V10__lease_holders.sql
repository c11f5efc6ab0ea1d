-- Who holds each gateway's lease, so that a start with a live gateway's id is refused instead of
-- fencing it (audit N-3): the holder's host name, process id and process start time, written by the
-- start that took the lease, for the epoch it took (holder_epoch: when it is not the row's epoch, a
-- build that did not record holders took the lease since, and the holder is unknown). released_at
-- is set by a holder that stopped cleanly (its expiry moves to then too). Null in rows written before
-- V10. See ton-billing/README.md, "Several gateways".
ALTER TABLE gateway_leases ADD COLUMN holder_epoch BIGINT;
ALTER TABLE gateway_leases ADD COLUMN holder_host VARCHAR(255);
ALTER TABLE gateway_leases ADD COLUMN holder_pid BIGINT;
ALTER TABLE gateway_leases ADD COLUMN holder_started_at_micros BIGINT;
ALTER TABLE gateway_leases ADD COLUMN released_at_micros BIGINT;
