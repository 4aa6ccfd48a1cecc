-- The newest held request of each kind, per device.
--
-- hold_seq (010) orders every announced hold of a device; these record the
-- hold_seq of the newest Ping and of the newest Sync with Wait, written by
-- the same UPDATE that bumps hold_seq and NOTIFYs it.  A held request that
-- may have missed a newer announcement (the LISTEN connection was down)
-- reads its kind's column: a value above its own sequence means a newer
-- request of the same kind was held meanwhile, so it ends
-- (bluesync.push.notifier).
ALTER TABLE devices
    ADD COLUMN ping_hold_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN sync_hold_seq bigint NOT NULL DEFAULT 0;
