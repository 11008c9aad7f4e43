-- AlterTable
ALTER TABLE "Pool" ADD COLUMN "allowFrom" TEXT;

