-- Device management: access decisions per partnership, access rules, the
-- audit trail and the administrators of the admin web page.

-- What a device may do.  access_reason says where the decision came from:
-- 'policy' was taken at first sight from [policy] unknown_device, and an
-- access rule that matches the device overrides it; 'admin' is an
-- administrator's decision for this one device, which overrides the rules.
ALTER TABLE devices ADD COLUMN access text NOT NULL DEFAULT 'allowed'
    CHECK (access IN ('allowed', 'blocked', 'quarantined'));
ALTER TABLE devices ADD COLUMN access_reason text NOT NULL DEFAULT 'policy'
    CHECK (access_reason IN ('policy', 'admin'));
-- An automatic block for misbehaviour: refused until then, whatever the
-- decision above.
ALTER TABLE devices ADD COLUMN blocked_until timestamptz;
ALTER TABLE devices ADD COLUMN autoblock_reason text NOT NULL DEFAULT '';
-- The state the account owner was last told about by email, so that each
-- quarantine, block or wipe is announced once.
ALTER TABLE devices ADD COLUMN notice text NOT NULL DEFAULT '';
-- While the device holds a Ping: when its heartbeat ends.  Any bluesync
-- process on this database can answer "is a Ping held now?", and a process
-- that dies leaves nothing stale behind for longer than one heartbeat.
ALTER TABLE devices ADD COLUMN ping_until timestamptz;

-- Access rules on what a device says it is.  The first matching rule in
-- (priority, id) order decides, for devices without an administrator's
-- decision.  pattern is what the administrator wrote (* and ? wildcards,
-- case-insensitive); like_pattern is its ILIKE form.
CREATE TABLE access_rules (
    id           bigserial PRIMARY KEY,
    field        text NOT NULL CHECK (field IN ('device_type', 'model', 'os', 'user_agent')),
    pattern      text NOT NULL,
    like_pattern text NOT NULL,
    action       text NOT NULL CHECK (action IN ('allowed', 'blocked', 'quarantined')),
    priority     integer NOT NULL,
    created_by   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_rules_order ON access_rules (priority, id);

-- Every administrative action and every automatic decision: who, what,
-- when, why.  Plain text, no foreign keys: the trail outlives the accounts
-- and devices it names.
CREATE TABLE audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    account text NOT NULL DEFAULT '',
    device  text NOT NULL DEFAULT '',
    detail  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);

-- Administrators of the admin web page (Argon2id hashes, like accounts).
CREATE TABLE admins (
    name          text PRIMARY KEY,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
