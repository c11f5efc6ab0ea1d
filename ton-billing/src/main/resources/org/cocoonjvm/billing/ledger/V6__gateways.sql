-- Several gateways on one ledger. Each gateway has a stable id (`--gateway-id`; 'default' for a lone
-- gateway, which is what everything before this migration belongs to) and a lease: every start takes
-- the next epoch, a live gateway renews expires_at every few seconds, and any gateway may end the
-- open reservations of an incarnation that is not its gateway's current, live one. fenced_at is set
-- when another gateway's sweep moved the epoch past an expired holder (null while held). See
-- ton-billing/README.md, "Several gateways".
CREATE TABLE gateway_leases (
    gateway_id        VARCHAR(64) NOT NULL PRIMARY KEY,
    epoch             BIGINT      NOT NULL CHECK (epoch >= 1),
    expires_at_micros BIGINT      NOT NULL,
    renewed_at_micros BIGINT      NOT NULL,
    fenced_at_micros  BIGINT
);

-- A reservation belongs to the incarnation (gateway_id, lease_epoch) that took it; recovered_by names
-- the gateway whose recovery or sweep ended it (null: ended by its owner's settle or release), so the
-- owner's late calls on it are refused instead of paying for usage nobody bills.
ALTER TABLE reservations ADD COLUMN gateway_id VARCHAR(64) DEFAULT 'default' NOT NULL;
ALTER TABLE reservations ADD COLUMN lease_epoch BIGINT DEFAULT 0 NOT NULL;
ALTER TABLE reservations ALTER COLUMN gateway_id DROP DEFAULT;
ALTER TABLE reservations ALTER COLUMN lease_epoch DROP DEFAULT;
ALTER TABLE reservations ADD COLUMN recovered_by VARCHAR(64);

-- One payment key per gateway: two gateways never sign on each other's channels.
CREATE TABLE payer_keys (
    gateway_id        VARCHAR(64) NOT NULL PRIMARY KEY,
    seed_hex          VARCHAR(64) NOT NULL,
    created_at_micros BIGINT      NOT NULL
);
INSERT INTO payer_keys (gateway_id, seed_hex, created_at_micros) SELECT 'default', seed_hex, created_at_micros FROM payer_key;
DROP TABLE payer_key;

-- One channel per (gateway, payee key): a worker registered with two gateways has two channels.
CREATE TABLE channels_by_gateway (
    gateway_id        VARCHAR(64)   NOT NULL,
    payee_key         VARCHAR(64)   NOT NULL,
    channel_id        VARCHAR(32)   NOT NULL UNIQUE,
    payer_key         VARCHAR(64)   NOT NULL,
    last_seqno        BIGINT        NOT NULL CHECK (last_seqno >= 0),
    last_sent_nanoton BIGINT        NOT NULL CHECK (last_sent_nanoton >= 0),
    last_state_boc    VARCHAR(1024),
    payee_state_boc   VARCHAR(1024),
    opened_at_micros  BIGINT        NOT NULL,
    updated_at_micros BIGINT        NOT NULL,
    PRIMARY KEY (gateway_id, payee_key)
);
INSERT INTO channels_by_gateway (gateway_id, payee_key, channel_id, payer_key, last_seqno, last_sent_nanoton,
    last_state_boc, payee_state_boc, opened_at_micros, updated_at_micros)
    SELECT 'default', payee_key, channel_id, payer_key, last_seqno, last_sent_nanoton, last_state_boc, payee_state_boc,
    opened_at_micros, updated_at_micros FROM channels;
DROP TABLE channels;
ALTER TABLE channels_by_gateway RENAME TO channels;

ALTER TABLE closed_channels ADD COLUMN gateway_id VARCHAR(64) DEFAULT 'default' NOT NULL;
ALTER TABLE closed_channels ALTER COLUMN gateway_id DROP DEFAULT;
