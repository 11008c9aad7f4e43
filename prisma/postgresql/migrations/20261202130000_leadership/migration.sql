-- CreateTable
CREATE TABLE "Leadership" (
    "id" INTEGER NOT NULL,
    "term" INTEGER NOT NULL,
    "url" TEXT NOT NULL,
    "electedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Leadership_pkey" PRIMARY KEY ("id")
);

