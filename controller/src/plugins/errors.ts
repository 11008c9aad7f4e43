// One error handler: ApiError -> its status and code; schema failures -> 400 with the field
// that was wrong; malformed JSON -> 400; anything unexpected -> 500 without its text.
import { clip, echo } from '@crossdock/shared';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, ERROR_STATUS, type ErrorCode } from '../errors.ts';

/** Field paths and framework messages can carry input (a key, a URL, a bit of the body). */
export const QUOTED_TEXT_MAX_CHARS = 200;
/** A last bound on any message, should one ever quote input without echo(). */
const MESSAGE_MAX_CHARS = 2048;

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function describeValidation(issues: ValidationIssue[], context: string | undefined): string {
  const where = context ?? 'request';
  const issue = issues[0];
  if (!issue) return `${where} is invalid`;
  const field = issue.instancePath ? `${where}${clip(issue.instancePath.replaceAll('/', '.'), QUOTED_TEXT_MAX_CHARS)}` : where;
  switch (issue.keyword) {
    case 'additionalProperties':
      return `${where} has an unknown field ${echo(String(issue.params.additionalProperty))}${issue.instancePath ? ` in ${field}` : ''}; remove it (GET /openapi.json lists the accepted fields)`;
    case 'required':
      return `${field} is missing the required field "${String(issue.params.missingProperty)}"`;
    case 'type':
      return `${field} must be of type ${String(issue.params.type)}`;
    case 'minProperties':
      return `${field} must set at least one field`;
    default:
      return `${field} ${issue.message ?? 'is invalid'}`;
  }
}

function send(
  reply: { code(n: number): { send(b: unknown): unknown } },
  code: ErrorCode,
  message: string,
  status: number = ERROR_STATUS[code],
  extra?: Record<string, unknown>,
) {
  return reply.code(status).send({ error: { code, message: clip(message, MESSAGE_MAX_CHARS), ...extra } });
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) return send(reply, error.code, error.message, error.statusCode, error.extra);
    const fe = error as FastifyError;
    if (fe.validation) {
      return send(reply, 'VALIDATION_FAILED', describeValidation(fe.validation as ValidationIssue[], fe.validationContext));
    }
    switch (fe.code) {
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(
          reply,
          'UNSUPPORTED_MEDIA_TYPE',
          `content type ${echo(request.headers['content-type'] ?? '(none)')} is not accepted; send application/json`,
        );
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(reply, 'PAYLOAD_TOO_LARGE', 'request body is too large; requests are small JSON objects');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return send(reply, 'INVALID_JSON', 'the body is empty but the content type says JSON; send a JSON object or no content type');
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return send(reply, 'INVALID_JSON', `request body is not valid JSON (${clip(fe.message, QUOTED_TEXT_MAX_CHARS)}); send a JSON object`);
    }
    if (fe instanceof SyntaxError || (fe.statusCode === 400 && /JSON/i.test(fe.message))) {
      return send(reply, 'INVALID_JSON', `request body is not valid JSON (${clip(fe.message, QUOTED_TEXT_MAX_CHARS)}); send a JSON object`);
    }
    const status = fe.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code: ErrorCode = status === 404 ? 'NOT_FOUND' : status === 405 ? 'METHOD_NOT_ALLOWED' : status === 401 ? 'UNAUTHORIZED' : 'VALIDATION_FAILED';
      return send(reply, code, clip(fe.message, QUOTED_TEXT_MAX_CHARS), status);
    }
    request.log.error({ err: error }, 'request failed');
    return send(reply, 'INTERNAL_ERROR', `internal error; the controller log has the details (request ${request.id})`);
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, 'NOT_FOUND', `no route ${request.method} ${clip(request.url.split('?')[0] ?? '', QUOTED_TEXT_MAX_CHARS)}; /docs lists the API`),
  );
}
