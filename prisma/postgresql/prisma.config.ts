// Prisma CLI configuration for the PostgreSQL store, used as
// `prisma <command> --config prisma/postgresql/prisma.config.ts` with CROSSDOCK_DB set to the
// postgresql:// URL: the JS engine with the pg driver adapter, so that generate, migrate status
// and migrate deploy work offline (no engine binaries are downloaded).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import { defineConfig } from 'prisma/config';

const here = path.dirname(fileURLToPath(import.meta.url));
// generate needs no database: a placeholder keeps env("CROSSDOCK_DB") resolvable (and valid for
// this schema where CROSSDOCK_DB names the SQLite file, as setup's generate may run with it set).
if (!/^postgres(ql)?:\/\//.test(process.env.CROSSDOCK_DB ?? '')) process.env.CROSSDOCK_DB = 'postgresql://localhost/crossdock';
const url = process.env.CROSSDOCK_DB;

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join(here, 'schema.prisma'),
  migrations: { path: path.join(here, 'migrations') },
  adapter: async () => new PrismaPg({ connectionString: url }),
});
