// Bearer-token checks: the admin token for operator routes; host tokens for agent routes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, tokenMatches } from '../auth/tokens.ts';
import { ApiError } from '../errors.ts';

export function adminAuth(adminTokenHash: string) {
  return async function requireAdmin(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const token = bearerToken(request.headers.authorization);
    if (!token) {
      throw new ApiError('UNAUTHORIZED', 'missing admin token; send the header "Authorization: Bearer <admin token>"');
    }
    if (!tokenMatches(token, adminTokenHash)) {
      throw new ApiError('UNAUTHORIZED', 'the admin token is wrong; use the one the controller printed on first start (saved beside its database)');
    }
  };
}
