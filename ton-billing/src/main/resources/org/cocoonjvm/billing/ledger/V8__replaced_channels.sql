-- A worker whose channel is closing keeps serving on its next one, so a payee key may have two open
-- channels: its current one, and the one it replaced, open until its close. current_payee_key is the
-- payee key on the current channel and null on a replaced one; unique per gateway, so a key still has
-- one current channel (nulls do not collide, in H2 as in PostgreSQL). Rebuilt as V6 did: the two
-- databases name and drop primary keys differently.
CREATE TABLE channels_v8 (
    gateway_id        VARCHAR(64)   NOT NULL,
    payee_key         VARCHAR(64)   NOT NULL,
    current_payee_key VARCHAR(64),
    channel_id        VARCHAR(32)   NOT NULL PRIMARY KEY,
    payer_key         VARCHAR(64)   NOT NULL,
    last_seqno        BIGINT        NOT NULL CHECK (last_seqno >= 0),
    last_sent_nanoton BIGINT        NOT NULL CHECK (last_sent_nanoton >= 0),
    last_state_boc    VARCHAR(1024),
    payee_state_boc   VARCHAR(1024),
    opened_at_micros  BIGINT        NOT NULL,
    updated_at_micros BIGINT        NOT NULL,
    contract_address  VARCHAR(80),
    payout_address    VARCHAR(80),
    CONSTRAINT channels_one_current UNIQUE (gateway_id, current_payee_key),
    CHECK (current_payee_key IS NULL OR current_payee_key = payee_key)
);
INSERT INTO channels_v8 (gateway_id, payee_key, current_payee_key, channel_id, payer_key, last_seqno, last_sent_nanoton,
    last_state_boc, payee_state_boc, opened_at_micros, updated_at_micros, contract_address, payout_address)
    SELECT gateway_id, payee_key, payee_key, channel_id, payer_key, last_seqno, last_sent_nanoton, last_state_boc,
    payee_state_boc, opened_at_micros, updated_at_micros, contract_address, payout_address FROM channels;
DROP TABLE channels;
ALTER TABLE channels_v8 RENAME TO channels;
CREATE INDEX channels_by_payee ON channels (gateway_id, payee_key);
