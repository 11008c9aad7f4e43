// Pools: utilization as bars (and as words), create, delete.
import { ApiError, type Api } from './api.ts';
import { confirmDialog } from './dialogs.ts';
import { h, replace } from './dom.ts';
import { FormErrors, busy, field, input } from './forms.ts';
import type { Pool } from './model.ts';

export class PoolPanel {
  readonly el: HTMLElement;
  private readonly tbody = h('tbody');
  private readonly deleteError = h('p', { class: 'form-error', role: 'alert', hidden: true });

  constructor(private readonly api: Api) {
    this.el = h(
      'div',
      null,
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { class: 'pools' },
          h('caption', { class: 'visually-hidden' }, 'Address pools and their utilization'),
          h('thead', null, h('tr', null, ...['Pool', 'Range', 'Subnets', 'Utilization', ''].map((t) => h('th', { scope: 'col' }, t)))),
          this.tbody,
        ),
      ),
      this.deleteError,
      this.createForm(),
    );
  }

  update(pools: Pool[]): void {
    replace(
      this.tbody,
      pools.length === 0 ? h('tr', null, h('td', { colspan: '5', class: 'muted' }, 'No pools: create one below.')) : null,
      ...pools.map((p) => {
        const u = p.utilization;
        const percent = u.total === 0 ? 0 : (u.allocated / u.total) * 100;
        const words = `${u.allocated} of ${u.total} allocated, ${u.free} free${u.reserved > 0 ? `, ${u.reserved} reserved` : ''}`;
        return h(
          'tr',
          { 'data-pool': p.name },
          h('th', { scope: 'row' }, p.name),
          h(
            'td',
            null,
            h('span', { class: 'cidr' }, p.cidr),
            p.reserved.length > 0 ? h('span', { class: 'muted' }, ` (reserved ${p.reserved.join(', ')})`) : null,
          ),
          h('td', null, `/${p.subnetPrefixLength}`),
          h(
            'td',
            { class: 'utilization' },
            h(
              'div',
              {
                class: 'bar',
                role: 'meter',
                'aria-label': `${p.name} utilization`,
                'aria-valuemin': '0',
                'aria-valuemax': String(u.total),
                'aria-valuenow': String(u.allocated),
                'aria-valuetext': words,
              },
              h('div', { class: 'fill', style: `width: ${percent.toFixed(2)}%` }),
            ),
            h('span', { class: 'bar-text' }, `${percent < 1 && u.allocated > 0 ? '<1' : Math.round(percent)}% · ${words}`),
          ),
          h(
            'td',
            null,
            h(
              'button',
              {
                type: 'button',
                class: 'small danger',
                'aria-label': `Delete pool ${p.name}`,
                onclick: (e: Event) => void this.remove(e.currentTarget as HTMLButtonElement, p),
              },
              'Delete',
            ),
          ),
        );
      }),
    );
  }

  private async remove(button: HTMLButtonElement, pool: Pool): Promise<void> {
    const yes = await confirmDialog({
      title: `Delete pool ${pool.name}?`,
      body: [
        h(
          'p',
          null,
          pool.utilization.allocated > 0
            ? `${pool.name} still holds ${pool.utilization.allocated} subnet(s); the controller refuses to delete a pool in use until they are released.`
            : `${pool.name} (${pool.cidr}) holds no subnets; it is removed and its range can be used again.`,
        ),
      ],
      confirm: `Delete ${pool.name}`,
      danger: true,
    });
    if (!yes) return;
    this.deleteError.hidden = true;
    await busy(button, async () => {
      try {
        await this.api.call('DELETE', `/v1/pools/${encodeURIComponent(pool.name)}`);
      } catch (error) {
        this.deleteError.textContent = error instanceof ApiError ? `${pool.name}: ${error.message} (${error.code})` : (error as Error).message;
        this.deleteError.hidden = false;
      }
    });
  }

  private createForm(): HTMLFormElement {
    const name = field('name', 'Name', input({ placeholder: 'e.g. backend' }));
    const cidr = field('cidr', 'CIDR', input({ placeholder: 'e.g. 10.200.0.0/16' }));
    const size = field('subnetPrefixLength', 'Subnet prefix length', input({ inputmode: 'numeric', value: '24' }));
    const reserved = field('reserved', 'Reserved ranges', input({ placeholder: 'optional, comma separated' }));
    const errors = new FormErrors([name, cidr, size, reserved], {
      INVALID_NAME: 'name',
      POOL_EXISTS: 'name',
      INVALID_CIDR: 'cidr',
      CIDR_HOST_BITS_SET: 'cidr',
      POOL_OVERLAP: 'cidr',
      POOL_RANGE_NOT_ALLOWED: 'cidr',
      ADDRESS_IN_POOL: 'cidr',
      INVALID_PREFIX_LENGTH: 'subnetPrefixLength',
      RESERVED_OUTSIDE_POOL: 'reserved',
    });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create pool');
    const form = h(
      'form',
      { class: 'inline-form', 'aria-label': 'Create a pool', novalidate: true },
      h('h3', null, 'Create a pool'),
      h('div', { class: 'fields' }, name.el, cidr.el, size.el, reserved.el),
      errors.general,
      h('div', { class: 'buttons' }, submit),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const body: Record<string, unknown> = { name: name.input.value.trim(), cidr: cidr.input.value.trim() };
      const length = size.input.value.trim();
      if (length) body.subnetPrefixLength = /^\d+$/.test(length) ? Number(length) : length;
      const ranges = reserved.input.value
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean);
      if (ranges.length > 0) body.reserved = ranges;
      void busy(submit, async () => {
        errors.clear();
        try {
          await this.api.call('POST', '/v1/pools', body);
          name.input.value = '';
          cidr.input.value = '';
          reserved.input.value = '';
        } catch (error) {
          errors.show(error);
        }
      });
    });
    return form;
  }
}
