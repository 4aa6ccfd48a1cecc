-- Accounts: one per mailbox user.  Addresses are stored lower-cased so that
-- lookups compare case-insensitively through a plain unique index.
CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    address       text NOT NULL UNIQUE CHECK (address = lower(address)),
    display_name  text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Further addresses delivering to an account.
CREATE TABLE account_aliases (
    address    text PRIMARY KEY CHECK (address = lower(address)),
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
);
