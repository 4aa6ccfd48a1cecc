-- Conversation rules: ItemOperations Move with MoveAlways (MS-ASCMD
-- 2.2.3.117.1, MS-ASCON 2.2.2.8) moves a conversation's messages and asks
-- that its future messages follow.  Delivery puts a new message whose
-- ConversationId has a rule in the rule's folder instead of the Inbox.
-- One rule per conversation and account: a later MoveAlways replaces it.
-- Deleting the folder deletes its rules (FolderStore.delete; folder rows
-- themselves stay as deleted markers, so no cascade fires there).
CREATE TABLE conversation_rules (
    account_id      bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    conversation_id bytea NOT NULL,
    folder_id       bigint NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, conversation_id)
);
CREATE INDEX conversation_rules_folder ON conversation_rules (folder_id);
