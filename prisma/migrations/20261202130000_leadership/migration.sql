-- CreateTable
CREATE TABLE "Leadership" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "term" INTEGER NOT NULL,
    "url" TEXT NOT NULL,
    "electedAt" DATETIME NOT NULL
);

