// Register a host: the form, then its token, shown once, with the executor command line.
import type { Api } from './api.ts';
import { modal, tokenBlock } from './dialogs.ts';
import { h, replace } from './dom.ts';
import { FormErrors, busy, field, input, select } from './forms.ts';
import type { Host, Store } from './model.ts';

export function registerHostDialog(api: Api, store: Store): void {
  const name = field('name', 'Name', input({ placeholder: 'e.g. node-4', autocapitalize: 'none' }), 'a DNS label: letters, digits and hyphens');
  const address = field(
    'address',
    'Address',
    input({ inputmode: 'decimal', placeholder: 'e.g. 192.168.32.24' }),
    "the host's IPv4 address on the network it shares with the others",
  );
  const iface = field('interface', 'Interface', input({ value: 'eth0' }));
  const pools: Array<[string, string]> = store.pools.map((p) => [p.name, `${p.name} (${p.cidr})`]);
  const pool = field(
    'pool',
    'First subnet from',
    select([...pools, ['', 'no subnet now']], store.pools.some((p) => p.name === 'default') ? 'default' : pools[0]?.[0]),
  );
  const fields = [name, address, iface, pool];
  const errors = new FormErrors(fields, {
    INVALID_NAME: 'name',
    HOST_EXISTS: 'name',
    INVALID_ADDRESS: 'address',
    ADDRESS_IN_USE: 'address',
    ADDRESS_IN_POOL: 'address',
    INVALID_INTERFACE: 'interface',
    POOL_EXHAUSTED: 'pool',
    POOL_NOT_FOUND: 'pool',
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Register');
  const cancel = h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel');
  const form = h('form', { novalidate: true }, ...fields.map((f) => f.el), errors.general, h('div', { class: 'buttons' }, cancel, submit));
  const dialog = modal('Register a host', form);
  name.input.focus();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body: Record<string, unknown> = { name: name.input.value.trim(), address: address.input.value.trim(), interface: iface.input.value.trim() || 'eth0' };
    if (pool.input.value === '') body.allocate = false;
    else body.pool = pool.input.value;
    void busy(submit, async () => {
      errors.clear();
      try {
        const created = await api.call<{ host: Host; token: string; join?: unknown }>('POST', '/v1/hosts', body);
        const done = h('button', { type: 'button', class: 'primary', onclick: () => dialog.close() }, 'Done');
        replace(
          form,
          h('p', null, `${created.host.name} is registered${created.host.subnets[0] ? ` with subnet ${created.host.subnets[0].cidr}` : ''}.`),
          tokenBlock(created.host.name, created.token, created.join),
          h('div', { class: 'buttons' }, done),
        );
        dialog.querySelector('h2')!.textContent = `${created.host.name}: start its executor`;
        done.focus();
      } catch (error) {
        errors.show(error);
      }
    });
  });
}
