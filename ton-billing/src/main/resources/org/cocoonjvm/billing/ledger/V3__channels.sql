-- The gateway's payment channels (it pays, workers are paid): the journal of what it signed, kept
-- beside the money those states pay out. Keys, ids and BOCs are lowercase hex, so H2 and
-- PostgreSQL read the same SQL (their binary types differ).

-- The payer's Ed25519 key: one row, created on first start. The channels below are worth only
-- what this key can sign; storing them together means one backup restores both.
CREATE TABLE payer_key (
    id                INTEGER     NOT NULL PRIMARY KEY CHECK (id = 1),
    seed_hex          VARCHAR(64) NOT NULL,
    created_at_micros BIGINT      NOT NULL
);

-- One row per worker (payee) key. A state is written here before it is sent, so a restarted
-- gateway continues above last_seqno and never signs a lower amount.
CREATE TABLE channels (
    payee_key         VARCHAR(64)   NOT NULL PRIMARY KEY,
    channel_id        VARCHAR(32)   NOT NULL UNIQUE,
    payer_key         VARCHAR(64)   NOT NULL,
    last_seqno        BIGINT        NOT NULL CHECK (last_seqno >= 0),
    last_sent_nanoton BIGINT        NOT NULL CHECK (last_sent_nanoton >= 0),
    last_state_boc    VARCHAR(1024),
    payee_state_boc   VARCHAR(1024),
    opened_at_micros  BIGINT        NOT NULL,
    updated_at_micros BIGINT        NOT NULL
);
