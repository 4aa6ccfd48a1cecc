-- Mail submitted by devices (SendMail, SmartReply, SmartForward) for the
-- SMTP relay.  A row is written in the same transaction that answers the
-- device, so "accepted" means "stored": a restart or a relay outage loses
-- nothing.  Each attempt claims its row with SELECT ... FOR UPDATE SKIP
-- LOCKED, so several bluesync processes on one database send it once.
CREATE TABLE outbound (
    id              bigserial PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- The envelope: MAIL FROM and the RCPT TO addresses still to deliver.
    sender          text NOT NULL,
    recipients      text[] NOT NULL,
    message         bytea NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    last_error      text NOT NULL DEFAULT '',
    -- 'queued' until every recipient is delivered ('sent') or some failed
    -- for good ('failed', a report is in the sender's Inbox).  The message
    -- bytes are dropped once the row is done.
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    delivered       text[] NOT NULL DEFAULT '{}',
    failed          jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX outbound_due ON outbound (next_attempt_at) WHERE state = 'queued';

-- The ClientId of every message a device submitted (MS-ASCMD 2.2.3.28.1):
-- a phone that resends after losing our answer is told 118, not sent twice.
CREATE TABLE submitted_client_ids (
    device_id  bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    client_id  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, client_id)
);
