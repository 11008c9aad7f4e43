// Modal dialogs (<dialog>: focus stays inside, Escape closes): confirmations that name what
// will happen, and the once-only display of a host token with its executor command line.
import { h, type Child } from './dom.ts';

function modal(title: string, ...content: Child[]): HTMLDialogElement {
  const heading = h('h2', { tabindex: '-1' }, title);
  const dialog = h('dialog', { 'aria-label': title }, heading, ...content);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  heading.focus();
  return dialog;
}

export function confirmDialog(options: { title: string; body: Child[]; confirm: string; danger?: boolean }): Promise<boolean> {
  return new Promise((resolve) => {
    let answered = false;
    const done = (yes: boolean) => {
      answered = true;
      resolve(yes);
      dialog.close();
    };
    const dialog = modal(
      options.title,
      h('div', { class: 'dialog-body' }, ...options.body),
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'button', onclick: () => done(false) }, 'Cancel'),
        h('button', { type: 'button', class: options.danger ? 'danger' : 'primary', onclick: () => done(true) }, options.confirm),
      ),
    );
    dialog.addEventListener('close', () => {
      if (!answered) resolve(false);
    });
  });
}

/**
 * The command that starts this host's executor: the controller's own join line when it gives
 * one, else the documented flags with the address this page was loaded from.
 */
export function executorCommand(token: string, join?: unknown): string {
  if (typeof join === 'string' && join.trim() !== '') return join;
  if (join && typeof join === 'object' && typeof (join as { command?: unknown }).command === 'string') return (join as { command: string }).command;
  return `npm run executor -- --controller ${location.origin} --token ${token}`;
}

async function copy(text: string, source: HTMLTextAreaElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API outside a secure context (plain http to another machine): select and copy.
    source.select();
    return document.execCommand('copy');
  }
}

/** Shows a token once. Closing the dialog removes it from the page. */
export function tokenBlock(host: string, token: string, join?: unknown): HTMLElement {
  const command = executorCommand(token, join);
  const area = h('textarea', { readonly: true, rows: 3, class: 'command', 'aria-label': `executor command line for ${host}`, spellcheck: 'false' });
  area.value = command;
  const status = h('span', { class: 'copy-status', role: 'status' });
  const button = h(
    'button',
    {
      type: 'button',
      class: 'primary',
      onclick: async () => {
        status.textContent = (await copy(command, area)) ? 'Copied.' : 'Copying failed: select the text and copy it by hand.';
      },
    },
    'Copy command',
  );
  return h(
    'div',
    { class: 'token-block', 'data-token-for': host },
    h('p', null, h('strong', null, 'This token is shown only now.'), ` Run this on ${host} (as root) to start its executor:`),
    area,
    h('div', { class: 'buttons' }, button, status),
    h('details', null, h('summary', null, 'The token alone'), h('code', { class: 'token' }, token)),
    join === undefined
      ? h(
          'p',
          { class: 'hint' },
          `The controller address is the one this page was loaded from (${location.origin}); change it if ${host} reaches the controller by another. From an installed executor: crossdock-executor with the same flags.`,
        )
      : null,
  );
}

export function showToken(title: string, host: string, token: string, join?: unknown): HTMLDialogElement {
  const dialog = modal(
    title,
    tokenBlock(host, token, join),
    h('div', { class: 'buttons' }, h('button', { type: 'button', onclick: () => dialog.close() }, 'Done')),
  );
  return dialog;
}

export { modal };
