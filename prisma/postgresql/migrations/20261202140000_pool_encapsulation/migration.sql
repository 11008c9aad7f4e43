-- Pool: encapsulation (never | crossSubnet | always) and an explicit network MTU, as in the SQLite store.
ALTER TABLE "Pool" ADD COLUMN     "encapsulation" TEXT NOT NULL DEFAULT 'crossSubnet',
ADD COLUMN     "mtu" INTEGER;
