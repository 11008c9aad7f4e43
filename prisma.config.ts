// Prisma CLI configuration: the JS engine with the better-sqlite3 driver adapter, so that
// generate and migrate work offline (no engine binaries are downloaded).
import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  adapter: async () => new PrismaBetterSQLite3({ url: process.env.CROSSDOCK_DB ?? 'file:./data/crossdock.db' }),
});
