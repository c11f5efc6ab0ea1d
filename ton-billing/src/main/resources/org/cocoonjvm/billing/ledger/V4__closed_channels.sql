-- Channels settled on chain. A payee's next session opens a new channel (a new channels row for
-- the same payee key, which is that table's primary key), so the settled row moves here: kept for
-- the record, never signed on again.
CREATE TABLE closed_channels (
    channel_id        VARCHAR(32)   NOT NULL PRIMARY KEY,
    payee_key         VARCHAR(64)   NOT NULL,
    payer_key         VARCHAR(64)   NOT NULL,
    last_seqno        BIGINT        NOT NULL,
    last_sent_nanoton BIGINT        NOT NULL,
    last_state_boc    VARCHAR(1024),
    payee_state_boc   VARCHAR(1024),
    opened_at_micros  BIGINT        NOT NULL,
    closed_at_micros  BIGINT        NOT NULL
);
