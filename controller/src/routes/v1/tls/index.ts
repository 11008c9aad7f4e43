// GET /v1/tls: what the controller serves and what hosts pin; POST /v1/tls/rotate: a new
// server certificate from the same CA (or the operator's files read again), served to new
// connections at once while established ones (executors' WebSockets) stay up.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ApiError } from '../../../errors.ts';
import { commonErrors } from '../../../schemas.ts';
import { TlsError, type ControllerTls } from '../../../tls.ts';

const TlsState = Type.Object({
  caFingerprint: Type.String({ description: 'sha256:<hex> of the CA the join line pins' }),
  source: Type.Union([Type.Literal('generated'), Type.Literal('operator')], {
    description: 'generated: the CA and server certificate beside the database; operator: --tls-cert and --tls-key',
  }),
  certificate: Type.Object({
    subject: Type.String(),
    sans: Type.Array(Type.String(), { description: 'the names and addresses the certificate is valid for' }),
    notBefore: Type.String({ format: 'date-time' }),
    notAfter: Type.String({ format: 'date-time' }),
    fingerprint: Type.String({ description: 'sha256:<hex> of the server certificate itself (changes with every renewal)' }),
  }),
});

function view(tls: ControllerTls) {
  const { caFingerprint, server } = tls.material;
  return { caFingerprint, source: tls.source.kind, certificate: server };
}

function requireTls(tls: ControllerTls | null): ControllerTls {
  if (!tls)
    throw new ApiError(
      'TLS_OFF',
      'this controller serves plain HTTP (CROSSDOCK_TLS=off): it has no certificate to show or renew; the proxy in front of it holds the certificate',
    );
  return tls;
}

const tlsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    { schema: { tags: ['tls'], summary: "The controller's certificate and the CA fingerprint hosts pin", response: { 200: TlsState, ...commonErrors } } },
    async () => view(requireTls(app.tls)),
  );

  app.post(
    '/rotate',
    {
      schema: {
        tags: ['tls'],
        summary: 'Renew the server certificate (same CA); executors stay connected',
        description:
          'Generated certificates: a new key and certificate signed by the same CA, with the same names. Operator certificates (--tls-cert): the files are read again. New connections get the new certificate at once; established ones keep theirs. Replacing the CA is not a rotation: every host joins again.',
        response: { 200: TlsState, ...commonErrors },
      },
    },
    async (request) => {
      const tls = requireTls(app.tls);
      try {
        await tls.renew();
      } catch (error) {
        if (error instanceof TlsError) throw new ApiError('TLS_RENEWAL_FAILED', error.message);
        throw error;
      }
      request.log.info({ fingerprint: tls.material.server.fingerprint, notAfter: tls.material.server.notAfter }, 'server certificate renewed');
      return view(tls);
    },
  );
};

export default tlsRoutes;
