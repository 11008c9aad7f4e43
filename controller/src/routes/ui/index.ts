// The dashboard's static files at /ui, as scripts/build.mjs bundled them into one folder
// (index.html, app.js, app.css). They are read once when the app is built and served from
// memory, gzipped ahead where the client accepts it. The page holds no data: everything it
// shows comes from the API with the admin token the operator types in, so /ui needs none.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

export interface UiOptions {
  /** the folder the build wrote the dashboard to */
  dir: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

// Nothing from elsewhere: no CDN, no inline script. Inline styles are allowed because the
// graph library sizes its canvas through style attributes.
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (!type) continue;
    const body = readFileSync(path.join(dir, name));
    assets.set(name, { type, body, gzip: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

const ui: FastifyPluginAsync<UiOptions> = async (app, options) => {
  const assets = loadAssets(options.dir);

  function send(request: FastifyRequest, reply: FastifyReply, name: string) {
    const asset = assets.get(name);
    if (!asset) {
      const message = assets.size === 0 ? `the dashboard is not built (no ${options.dir}); run \`npm run build\`` : `no file ${name} in the dashboard`;
      return reply
        .code(assets.size === 0 ? 503 : 404)
        .type('text/plain; charset=utf-8')
        .send(message);
    }
    void reply
      .header('content-type', asset.type)
      .header('etag', asset.etag)
      // Revalidated on every load (a 304 is cheap): a new build is picked up at once.
      .header('cache-control', 'no-cache')
      .header('vary', 'accept-encoding')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', CONTENT_SECURITY_POLICY);
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) return reply.header('content-encoding', 'gzip').send(asset.gzip);
    return reply.send(asset.body);
  }

  app.get('/ui', { schema: { hide: true } }, (request, reply) => send(request, reply, 'index.html'));
  app.get('/ui/', { schema: { hide: true } }, (request, reply) => send(request, reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/ui/:file', { schema: { hide: true } }, (request, reply) => send(request, reply, request.params.file));
};

export default ui;
