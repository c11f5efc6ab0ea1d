-- The contract each on-chain channel is bound to, and the payout address it pays the worker at
-- (raw form, "0:<hex>"); null until the gateway first opens the channel on chain, and for
-- off-chain channels. A state names only its channel id, so the gateway deploys no other contract
-- under that id: a worker whose terms (its payout address) now derive another is refused.
ALTER TABLE channels ADD COLUMN contract_address VARCHAR(80);
ALTER TABLE channels ADD COLUMN payout_address VARCHAR(80);
ALTER TABLE closed_channels ADD COLUMN contract_address VARCHAR(80);
ALTER TABLE closed_channels ADD COLUMN payout_address VARCHAR(80);
