-- Pool: encapsulation (never | crossSubnet | always) and an explicit network MTU. Two ADD
-- COLUMNs, not the table rebuild `prisma migrate diff` writes: migrations run in a transaction,
-- where PRAGMA foreign_keys=OFF does nothing, and dropping Pool would cascade to its reserved ranges.
ALTER TABLE "Pool" ADD COLUMN "encapsulation" TEXT NOT NULL DEFAULT 'crossSubnet';
ALTER TABLE "Pool" ADD COLUMN "mtu" INTEGER;
