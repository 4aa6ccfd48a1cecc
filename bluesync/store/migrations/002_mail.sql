-- Devices: one row per partnership between a phone (DeviceId) and an account.
CREATE TABLE devices (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id        text NOT NULL,
    device_type      text NOT NULL DEFAULT '',
    user_agent       text NOT NULL DEFAULT '',
    protocol_version text NOT NULL DEFAULT '',
    -- Provisioning (MS-ASPROV): the key handed out in phase 1, and the one
    -- confirmed in phase 2 that requests must carry.
    pending_policy_key bigint,
    policy_key       bigint,
    policy_status    smallint,
    -- Remote wipe: 'none', 'pending', 'pending_account' (16.1 account-only),
    -- 'wiped' once acknowledged.
    wipe             text NOT NULL DEFAULT 'none',
    wipe_requested_at timestamptz,
    wipe_acknowledged_at timestamptz,
    -- Settings DeviceInformation (MS-ASCMD 2.2.3.48).
    model            text NOT NULL DEFAULT '',
    imei             text NOT NULL DEFAULT '',
    friendly_name    text NOT NULL DEFAULT '',
    os               text NOT NULL DEFAULT '',
    os_language      text NOT NULL DEFAULT '',
    phone_number     text NOT NULL DEFAULT '',
    mobile_operator  text NOT NULL DEFAULT '',
    enable_outbound_sms boolean,
    -- The last Ping's parameters, reused by an empty Ping (survives restarts).
    ping_heartbeat   integer,
    ping_folders     bigint[],
    first_seen       timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz NOT NULL DEFAULT now(),
    last_command     text NOT NULL DEFAULT '',
    UNIQUE (account_id, device_id)
);

-- Folders.  modseq is the content counter: every item write in the folder
-- takes this row's lock, bumps it and stamps the item, so modseqs commit in
-- order.  hierarchy_modseq stamps the folder itself from the account's
-- hierarchy counter, for FolderSync.
ALTER TABLE accounts ADD COLUMN hierarchy_modseq bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN oof jsonb;

CREATE TABLE folders (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    parent_id        bigint REFERENCES folders (id) ON DELETE CASCADE,
    name             text NOT NULL,
    type             smallint NOT NULL,
    content_class    text NOT NULL,
    modseq           bigint NOT NULL DEFAULT 0,
    hierarchy_modseq bigint NOT NULL,
    created_hierarchy_modseq bigint NOT NULL,
    -- A default folder: cannot be renamed, moved or deleted.
    system           boolean NOT NULL DEFAULT false,
    deleted          boolean NOT NULL DEFAULT false
);
CREATE INDEX folders_account ON folders (account_id, hierarchy_modseq);
CREATE UNIQUE INDEX folders_name ON folders (account_id, coalesce(parent_id, 0), lower(name))
    WHERE NOT deleted;

-- Items, stored in their standard format (RFC 5322, vCard, iCalendar) in
-- content, with what the sync needs in columns.  summary holds the parsed
-- fields the content class serves, so a Sync never re-parses headers.
CREATE TABLE items (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    folder_id        bigint NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    modseq           bigint NOT NULL,
    created_modseq   bigint NOT NULL,
    content_class    text NOT NULL,
    content          bytea NOT NULL,
    summary          jsonb NOT NULL DEFAULT '{}',
    -- Mutable state shared by all devices.
    read             boolean NOT NULL DEFAULT false,
    flag             jsonb,
    categories       text[] NOT NULL DEFAULT '{}',
    last_verb        smallint,
    last_verb_time   timestamptz,
    -- Searchable and filterable columns.
    subject          text NOT NULL DEFAULT '',
    from_address     text NOT NULL DEFAULT '',
    date_received    timestamptz NOT NULL DEFAULT now(),
    message_id       text NOT NULL DEFAULT '',
    size             integer NOT NULL DEFAULT 0,
    importance       smallint NOT NULL DEFAULT 1,
    has_attachments  boolean NOT NULL DEFAULT false,
    message_class    text NOT NULL DEFAULT '',
    conversation_id  bytea,
    -- Idempotent client Adds: the device and ClientId that created it.
    origin_device    bigint,
    client_id        text
);
CREATE INDEX items_changes ON items (folder_id, modseq);
CREATE INDEX items_date ON items (folder_id, date_received);
CREATE UNIQUE INDEX items_client ON items (origin_device, client_id) WHERE client_id IS NOT NULL;

-- Deletions and moves out of a folder leave a tombstone, stamped from the
-- folder's counter, so "what changed since S" sees them.
CREATE TABLE tombstones (
    folder_id bigint NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    item_id   bigint NOT NULL,
    modseq    bigint NOT NULL,
    soft      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (folder_id, modseq)
);

-- Sync states.  A sync key names one row; the previous key's row is kept
-- until the device uses the new one, so a resent request is answered again.
-- collection is a folder id, or 0 for the folder hierarchy.
CREATE TABLE sync_states (
    device_id    bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    collection   bigint NOT NULL,
    epoch        text NOT NULL,
    counter      integer NOT NULL,
    modseq       bigint NOT NULL,
    state        jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, collection, counter)
);
