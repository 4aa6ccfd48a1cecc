"""
Conversation rules: "move this conversation's future messages too"
(ItemOperations Move with MoveAlways, MS-ASCMD 2.2.3.117.1).

A rule names, for one account, a ConversationId and the folder its new
messages go to.  LMTP delivery and the local copies of SendMail apply it
where they find the Inbox, in the same statement (L{destination_sql},
L{ConversationRuleStore.delivery_folder}), so a rule costs no round trip
per message and an account without rules pays nothing.  A rule whose folder is deleted is deleted with it
(FolderStore.delete); until then, a rule pointing to a folder no longer
live is ignored, and the message goes to the Inbox.

Like Exchange's, a rule does not live for ever: updated_at is its last use
(written by MoveAlways, renewed when it routes a message, at most hourly,
L{touch_rule_sql}), and the service purges rules unused for [mail]
conversation_rule_days (L{ConversationRuleStore.purge}).  A conversation
that went quiet for that long starts afresh in the Inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg2

from bluesync.store.database import Database, Transaction
from bluesync.store.folders import INBOX, NoSuchFolder


def destination_sql(account: str, conversation: str) -> str:
    """
    An SQL expression: the live folder that a rule of account C{account}
    sends a message of conversation C{conversation} to, or NULL (both are
    SQL expressions of the caller's statement).  Delivery's function
    bluesync_deliver (migrations 013, 015) holds a copy: change both.
    """
    return (
        "(SELECT r.folder_id FROM conversation_rules r JOIN folders rf ON rf.id = r.folder_id"
        " AND rf.account_id = r.account_id"
        f" WHERE r.account_id = {account} AND r.conversation_id = {conversation} AND NOT rf.deleted)"
    )


# A rule that routes a message is renewed (updated_at) at most this often:
# expiry counts in days, and a busy conversation then costs one row
# version an hour, not one per message.
RENEW_EVERY = "1 hour"


def touch_rule_sql(account: str, conversation: str, folder: str) -> str:
    """
    An SQL statement that renews the account's rule for the conversation
    if it names C{folder} (the message went where the rule says).  A rule
    locked by someone else (a MoveAlways renewing it, a FolderDelete
    removing it) is skipped rather than waited for: that writer settles
    it.  Delivery's function bluesync_deliver (migration 015) holds a
    copy: change both.
    """
    return (
        "UPDATE conversation_rules SET updated_at = now() WHERE (account_id, conversation_id) IN"
        " (SELECT account_id, conversation_id FROM conversation_rules"
        f" WHERE account_id = {account} AND conversation_id = {conversation} AND folder_id = {folder}"
        f" AND updated_at < now() - interval '{RENEW_EVERY}' FOR UPDATE SKIP LOCKED)"
    )


@dataclass(frozen=True)
class ConversationRule:
    account_id: int
    conversation_id: bytes
    folder_id: int
    updated_at: datetime


class ConversationRuleStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def always_move(self, account_id: int, conversation_id: bytes, folder_id: int) -> int | None:
        """
        From now on, deliver the conversation's messages to C{folder_id}.
        Returns the folder of the rule this replaces, if any (for
        L{restore}).

        @raise NoSuchFolder: C{folder_id} is not a live folder of the
            account (another account's included); no rule is written.
        """

        async def work(transaction: Transaction) -> int | None:
            previous = await transaction.query_one(
                "SELECT folder_id FROM conversation_rules WHERE account_id = %s AND conversation_id = %s"
                " FOR UPDATE",
                (account_id, psycopg2.Binary(conversation_id)),
            )
            written = await transaction.query_one(
                "INSERT INTO conversation_rules (account_id, conversation_id, folder_id)"
                " SELECT account_id, %s, id FROM folders WHERE id = %s AND account_id = %s AND NOT deleted"
                " ON CONFLICT (account_id, conversation_id)"
                " DO UPDATE SET folder_id = excluded.folder_id, updated_at = now() RETURNING 1",
                (psycopg2.Binary(conversation_id), folder_id, account_id),
            )
            if written is None:
                raise NoSuchFolder(folder_id)
            return previous[0] if previous else None

        return await self._database.transaction(work)

    async def restore(self, account_id: int, conversation_id: bytes, folder_id: int | None) -> None:
        """
        Put back the rule L{always_move} replaced (None: there was none,
        as there is none once its folder is deleted).
        """
        if folder_id is not None:
            try:
                await self.always_move(account_id, conversation_id, folder_id)
                return
            except NoSuchFolder:
                pass
        await self._database.execute(
            "DELETE FROM conversation_rules WHERE account_id = %s AND conversation_id = %s",
            (account_id, psycopg2.Binary(conversation_id)),
        )

    async def destination(self, account_id: int, conversation_id: bytes) -> int | None:
        """
        The live folder the account's rule for this conversation names, if any.
        """
        row = await self._database.query_one(
            f"SELECT {destination_sql('%s', '%s')}", (account_id, psycopg2.Binary(conversation_id))
        )
        return row[0] if row else None

    async def delivery_folder(self, account_id: int, conversation_id: bytes | None) -> int | None:
        """
        Where a new message of this conversation goes for this account: the
        rule's folder, else the Inbox (None: the account has no Inbox).  One
        statement, like the Inbox lookup it stands for.
        """
        row = await self._database.query_one(
            f"SELECT coalesce({destination_sql('%(account)s', '%(conversation)s')},"
            f" (SELECT id FROM folders WHERE account_id = %(account)s AND type = {INBOX} AND NOT deleted"
            " ORDER BY id LIMIT 1))",
            {"account": account_id,
             "conversation": psycopg2.Binary(conversation_id) if conversation_id is not None else None},
        )
        return row[0] if row else None

    async def purge(self, before: datetime) -> int:
        """
        Delete the rules last used before C{before}; return how many.  A
        rule routing a message at this moment holds its row (SKIP LOCKED
        there, so nothing waits); it is only renewed if it survives.
        """
        row = await self._database.query_one(
            "WITH gone AS (DELETE FROM conversation_rules WHERE updated_at < %s RETURNING 1)"
            " SELECT count(*) FROM gone", (before,)
        )
        return row[0]

    async def delete(self, account_id: int, conversation_id: bytes) -> bool:
        """
        Forget the account's rule for the conversation (an administrator's
        request); its next messages go to the Inbox.  False: there was none.
        """
        row = await self._database.query_one(
            "DELETE FROM conversation_rules WHERE account_id = %s AND conversation_id = %s RETURNING 1",
            (account_id, psycopg2.Binary(conversation_id)),
        )
        return row is not None

    async def list(self, account_id: int) -> list[ConversationRule]:
        rows = await self._database.query(
            "SELECT account_id, conversation_id, folder_id, updated_at FROM conversation_rules"
            " WHERE account_id = %s ORDER BY updated_at, conversation_id",
            (account_id,),
        )
        return [ConversationRule(row[0], bytes(row[1]), row[2], row[3]) for row in rows]
