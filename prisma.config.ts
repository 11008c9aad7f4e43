// Prisma CLI configuration: the JS engine with the better-sqlite3 driver adapter, so that
// generate and migrate work offline (no engine binaries are downloaded).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';

const url = process.env.CROSSDOCK_DB ?? 'file:./data/crossdock.db';
// The CLI opens the database even for `migrate diff`; make sure its directory exists.
mkdirSync(path.dirname(url.replace(/^file:/, '')), { recursive: true });

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  adapter: async () => new PrismaBetterSQLite3({ url }),
});
