// Form fields with their own error line: an API error is shown next to the field it concerns
// (by its code, else by the field named in its message), or above the form's buttons.
import { ApiError } from './api.ts';
import { h, uid } from './dom.ts';

export interface Field<E extends HTMLInputElement | HTMLSelectElement = HTMLInputElement | HTMLSelectElement> {
  name: string;
  el: HTMLElement;
  input: E;
  error: HTMLElement;
}

export function field<E extends HTMLInputElement | HTMLSelectElement>(name: string, label: string, input: E, hint?: string): Field<E> {
  const id = uid(`f-${name}`);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : undefined;
  input.id = id;
  input.name = name;
  input.setAttribute('aria-describedby', [hintId, errorId].filter(Boolean).join(' '));
  const error = h('p', { class: 'field-error', id: errorId, 'data-field-error': name, hidden: true });
  const el = h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: hintId }, hint) : null, error);
  return { name, el, input, error };
}

export class FormErrors {
  readonly general = h('p', { class: 'form-error', role: 'alert', hidden: true });

  constructor(
    private readonly fields: Field[],
    /** API error code -> the field it concerns */
    private readonly byCode: Record<string, string> = {},
  ) {}

  clear(): void {
    for (const f of this.fields) {
      f.error.hidden = true;
      f.error.textContent = '';
      f.input.removeAttribute('aria-invalid');
    }
    this.general.hidden = true;
    this.general.textContent = '';
  }

  show(error: unknown): void {
    this.clear();
    const message = error instanceof ApiError ? `${error.message} (${error.code})` : (error as Error).message;
    const name =
      error instanceof ApiError ? (this.byCode[error.code] ?? this.fields.find((f) => new RegExp(`\\b${f.name}\\b`).test(error.message))?.name) : undefined;
    const target = name === undefined ? undefined : this.fields.find((f) => f.name === name);
    if (!target) {
      this.general.textContent = message;
      this.general.hidden = false;
      return;
    }
    target.error.textContent = message;
    target.error.hidden = false;
    target.error.setAttribute('role', 'alert');
    target.input.setAttribute('aria-invalid', 'true');
    target.input.focus();
  }
}

export function input(props: Record<string, unknown> = {}): HTMLInputElement {
  return h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...props });
}

export function select(options: Array<[string, string]>, value?: string): HTMLSelectElement {
  return h('select', null, ...options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

/** Runs an action with the button disabled, so a double click cannot send it twice. */
export async function busy<T>(button: HTMLButtonElement, action: () => Promise<T>): Promise<T> {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
