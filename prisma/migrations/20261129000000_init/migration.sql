-- CreateTable
CREATE TABLE "Pool" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "cidr" TEXT NOT NULL,
    "subnetPrefixLength" INTEGER NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "ReservedRange" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "poolId" INTEGER NOT NULL,
    "cidr" TEXT NOT NULL,
    CONSTRAINT "ReservedRange_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "Pool" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Host" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "interface" TEXT NOT NULL,
    "labels" TEXT NOT NULL DEFAULT '{}',
    "tokenHash" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "lastSeenAt" DATETIME,
    "desiredGeneration" INTEGER NOT NULL DEFAULT 0,
    "appliedGeneration" INTEGER NOT NULL DEFAULT 0
);

-- CreateTable
CREATE TABLE "Subnet" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "cidr" TEXT NOT NULL,
    "prefixLength" INTEGER NOT NULL,
    "gateway" TEXT NOT NULL,
    "network" TEXT NOT NULL,
    "mode" TEXT NOT NULL,
    "poolId" INTEGER NOT NULL,
    "hostId" INTEGER NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Subnet_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "Pool" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "Subnet_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "Pool_name_key" ON "Pool"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Pool_cidr_key" ON "Pool"("cidr");

-- CreateIndex
CREATE UNIQUE INDEX "ReservedRange_poolId_cidr_key" ON "ReservedRange"("poolId", "cidr");

-- CreateIndex
CREATE UNIQUE INDEX "Host_name_key" ON "Host"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Host_address_key" ON "Host"("address");

-- CreateIndex
CREATE UNIQUE INDEX "Host_tokenHash_key" ON "Host"("tokenHash");

-- CreateIndex
CREATE UNIQUE INDEX "Subnet_cidr_key" ON "Subnet"("cidr");

-- CreateIndex
CREATE INDEX "Subnet_poolId_idx" ON "Subnet"("poolId");

-- CreateIndex
CREATE UNIQUE INDEX "Subnet_hostId_network_key" ON "Subnet"("hostId", "network");

