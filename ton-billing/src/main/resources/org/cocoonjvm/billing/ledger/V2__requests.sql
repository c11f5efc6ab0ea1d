-- Per request audit, written in the same transaction as the settlement it explains, so the
-- operator can check the gateway's margin (client cost - worker fee) per request and per worker.
-- Worker ids and model names come from workers, not from this gateway: room to spare, since a
-- value too long would fail the settlement it belongs to.

CREATE TABLE requests (
    request_id          VARCHAR(100) NOT NULL PRIMARY KEY,
    reservation_id      BIGINT       NOT NULL UNIQUE REFERENCES reservations (reservation_id),
    account_id          VARCHAR(200) NOT NULL REFERENCES accounts (account_id),
    worker_id           VARCHAR(1000),
    model               VARCHAR(1000) NOT NULL,
    prompt_tokens       BIGINT       NOT NULL,
    cached_tokens       BIGINT       NOT NULL,
    completion_tokens   BIGINT       NOT NULL,
    reasoning_tokens    BIGINT       NOT NULL,
    client_cost_nanoton BIGINT       NOT NULL,
    worker_fee_nanoton  BIGINT       NOT NULL CHECK (worker_fee_nanoton <= client_cost_nanoton),
    recorded_at_micros  BIGINT       NOT NULL
);

CREATE INDEX requests_by_account ON requests (account_id);
CREATE INDEX requests_by_worker ON requests (worker_id);
