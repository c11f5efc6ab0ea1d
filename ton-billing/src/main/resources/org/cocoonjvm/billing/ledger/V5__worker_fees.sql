-- What each request owes its worker, beside what it bills its client: the payment channel its fee is
-- paid on and the worker fee of the usage its progress bills, written by the payment round's
-- checkpoint in the same transaction as that progress. After a crash, a restarted gateway pays each
-- channel the fees of everything the ledger bills on it (settled requests by their audit record,
-- recovered ones by this checkpoint), including what was checkpointed but not yet signed.
-- Null on rows no round has checkpointed.
ALTER TABLE reservations ADD COLUMN channel_id VARCHAR(32);
ALTER TABLE reservations ADD COLUMN worker_fee_nanoton BIGINT;
CREATE INDEX reservations_by_channel ON reservations (channel_id);
