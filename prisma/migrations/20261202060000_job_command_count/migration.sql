-- Job listings show how many commands a job has without reading (and parsing) the commands;
-- existing jobs are counted once here.
-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Job" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "hostId" INTEGER NOT NULL,
    "generation" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "commands" TEXT NOT NULL,
    "commandCount" INTEGER NOT NULL DEFAULT 0,
    "results" TEXT,
    "error" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" DATETIME,
    CONSTRAINT "Job_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_Job" ("commands", "commandCount", "createdAt", "error", "finishedAt", "generation", "hostId", "id", "reason", "results", "status") SELECT "commands", json_array_length("commands"), "createdAt", "error", "finishedAt", "generation", "hostId", "id", "reason", "results", "status" FROM "Job";
DROP TABLE "Job";
ALTER TABLE "new_Job" RENAME TO "Job";
CREATE INDEX "Job_hostId_id_idx" ON "Job"("hostId", "id");
CREATE INDEX "Job_status_idx" ON "Job"("status");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

