// Request validation: bodies are checked as sent; query strings and path parameters arrive as
// text, are coerced to their schema types, and every number among them is then checked to be
// a finite whole number inside its documented range. Ajv's own integer check lets Infinity
// through ("1e400" coerces to it), which reached Prisma as `take: Infinity` (a 500) and made
// `available` list four million subnets.
import type { TSchema } from '@sinclair/typebox';
import Ajv from 'ajv';
import type { FastifySchemaValidationError } from 'fastify';

// Bodies are checked as sent: no coercion ("24" is not 24), no silently dropped fields.
// strictNumbers: NaN and Infinity (JSON's 1e400) are not numbers an operator meant.
const bodyAjv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: true, strict: false, strictNumbers: true });
const textAjv = new Ajv({ allErrors: false, coerceTypes: true, removeAdditional: false, useDefaults: true, strict: false, strictNumbers: true });

interface NumericField {
  name: string;
  integer: boolean;
  minimum: number;
  maximum: number;
}

type Validator = ((data: unknown) => boolean) & { errors?: FastifySchemaValidationError[] | null };

const NUMERIC_KEYWORDS = new Set(['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']);

function numericFields(schema: TSchema): NumericField[] {
  const properties = (schema as { properties?: Record<string, { type?: string; minimum?: number; maximum?: number }> }).properties ?? {};
  const fields: NumericField[] = [];
  for (const [name, property] of Object.entries(properties)) {
    if (property.type !== 'integer' && property.type !== 'number') continue;
    fields.push({
      name,
      integer: property.type === 'integer',
      minimum: property.minimum ?? Number.MIN_SAFE_INTEGER,
      maximum: property.maximum ?? Number.MAX_SAFE_INTEGER,
    });
  }
  return fields;
}

const rangeError = (field: NumericField): FastifySchemaValidationError => ({
  instancePath: `/${field.name}`,
  keyword: 'range',
  schemaPath: `#/properties/${field.name}`,
  params: {},
  message: `must be a ${field.integer ? 'whole' : 'finite'} number from ${field.minimum} to ${field.maximum}`,
});

/** A query-string or path-parameter validator whose numbers are finite, whole and in range. */
export function compileTextValidator(schema: TSchema): Validator {
  const validate = textAjv.compile(schema);
  const fields = numericFields(schema);
  if (fields.length === 0) return validate as Validator;
  const byPath = new Map(fields.map((f) => [`/${f.name}`, f]));
  const wrapped: Validator = (data) => {
    if (!validate(data)) {
      const first = validate.errors?.[0];
      const field = first ? byPath.get(first.instancePath) : undefined;
      // One message for every way a number can be wrong, naming the range.
      wrapped.errors = field && NUMERIC_KEYWORDS.has(first!.keyword) ? [rangeError(field)] : (validate.errors as FastifySchemaValidationError[]);
      return false;
    }
    const values = data as Record<string, unknown>;
    for (const field of fields) {
      const value = values[field.name];
      if (value === undefined) continue;
      if (
        typeof value !== 'number' ||
        !(field.integer ? Number.isSafeInteger(value) : Number.isFinite(value)) ||
        value < field.minimum ||
        value > field.maximum
      ) {
        wrapped.errors = [rangeError(field)];
        return false;
      }
    }
    wrapped.errors = null;
    return true;
  };
  return wrapped;
}

export function compileValidator({ schema, httpPart }: { schema: TSchema; httpPart?: string }): Validator {
  return httpPart === 'body' ? (bodyAjv.compile(schema) as Validator) : compileTextValidator(schema);
}
