-- Which request each reservation is held for (audit V, V-8). A gateway that dies with requests running
-- leaves their reservations open, and its next start (or a peer's sweep) ends them at their last
-- checkpoint: that process must say which requests it billed, in its access log, its metrics and a
-- record that GET /v1/requests/{id} finds. request_id, key_id and model are written with the
-- reservation; worker_id and the four token counts by the payment round's checkpoint, in the same
-- statement as its worker fee (V5): the worker and the usage its progress bills. Null in rows written
-- before V14 (recovered as before, reported with what is known) and, for the checkpoint's, until one.
ALTER TABLE reservations ADD COLUMN request_id VARCHAR(100);
ALTER TABLE reservations ADD COLUMN key_id VARCHAR(200);
ALTER TABLE reservations ADD COLUMN model VARCHAR(1000);
ALTER TABLE reservations ADD COLUMN worker_id VARCHAR(1000);
ALTER TABLE reservations ADD COLUMN prompt_tokens BIGINT;
ALTER TABLE reservations ADD COLUMN cached_tokens BIGINT;
ALTER TABLE reservations ADD COLUMN completion_tokens BIGINT;
ALTER TABLE reservations ADD COLUMN reasoning_tokens BIGINT;
