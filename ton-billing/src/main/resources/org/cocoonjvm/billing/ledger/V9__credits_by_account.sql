-- The start grant (--grant-nanoton) is credited once per account whatever its amount: the book looks
-- for the account's credits under 'grant-at-start:<account>' and under the older form that named the
-- amount too, 'grant-at-start:<account>:<amount>'. By account, so that this reads a few rows, not
-- every deposit.
CREATE INDEX credits_by_account ON credits (account_id);
