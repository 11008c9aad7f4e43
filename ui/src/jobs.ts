// Job history: each job a disclosure; opening one loads its per-command results (the command
// as an operator would type it, exit code, stdout, stderr, duration).
import type { Api } from './api.ts';
import { ago, h, replace } from './dom.ts';
import type { JobDetail, JobSummary } from './model.ts';

const FINISHED = new Set(['succeeded', 'failed', 'timeout']);

function resultsView(job: JobDetail): HTMLElement {
  if (job.results.length === 0) return h('p', { class: 'muted' }, 'No commands.');
  return h(
    'ol',
    { class: 'results' },
    ...job.results.map((r) =>
      h(
        'li',
        { class: r.ok === false ? 'bad' : r.ok ? 'good' : 'muted' },
        h('code', { class: 'cmd' }, r.text),
        h(
          'p',
          { class: 'result-meta' },
          r.ok === null ? 'not run (yet)' : r.ok ? 'ok' : 'failed',
          r.exitCode === null ? '' : ` · exit ${r.exitCode}`,
          r.durationMs === null ? '' : ` · ${Math.round(r.durationMs)} ms`,
        ),
        r.stdout ? h('pre', { class: 'output', 'aria-label': 'stdout' }, r.stdout) : null,
        r.stderr ? h('pre', { class: 'output stderr', 'aria-label': 'stderr' }, r.stderr) : null,
      ),
    ),
  );
}

export class JobList {
  readonly el: HTMLUListElement;
  private readonly items = new Map<number, { li: HTMLLIElement; summary: HTMLElement; body: HTMLElement; status: string; loaded: boolean }>();

  constructor(
    private readonly api: Api,
    private readonly showHost: boolean,
    label: string,
  ) {
    this.el = h('ul', { class: 'jobs', 'aria-label': label });
  }

  update(jobs: JobSummary[]): void {
    const keep = new Set(jobs.map((j) => j.id));
    for (const [id, item] of this.items) {
      if (!keep.has(id)) {
        item.li.remove();
        this.items.delete(id);
      }
    }
    let previous: Element | null = null;
    for (const job of jobs) {
      let item = this.items.get(job.id);
      if (!item) item = this.create(job);
      if (item.status !== job.status) {
        item.status = job.status;
        item.li.className = `job ${job.status}`;
        replace(item.summary, ...this.summaryText(job));
        // A job that finished since it was opened: read its results again.
        if (item.loaded && (item.li.firstChild as HTMLDetailsElement).open) void this.load(job.id, item.body);
        else item.loaded = false;
      }
      const expected: Element | null = previous ? previous.nextElementSibling : this.el.firstElementChild;
      if (expected !== item.li) this.el.insertBefore(item.li, expected);
      previous = item.li;
    }
    if (jobs.length === 0 && !this.el.querySelector('.empty')) this.el.append(h('li', { class: 'empty muted' }, 'No jobs yet.'));
    if (jobs.length > 0) this.el.querySelector('.empty')?.remove();
  }

  private summaryText(job: JobSummary) {
    return [
      h('span', { class: `badge ${job.status}` }, job.status),
      ` #${job.id} `,
      this.showHost ? h('strong', null, job.host) : null,
      this.showHost ? ' · ' : null,
      job.reason,
      ` · ${job.commandCount} command${job.commandCount === 1 ? '' : 's'} · generation ${job.generation} · `,
      h('time', { datetime: job.createdAt, title: job.createdAt }, ago(job.createdAt)),
      job.error ? h('span', { class: 'job-error' }, ` · ${job.error}`) : null,
    ];
  }

  private create(job: JobSummary) {
    const summary = h('summary', null);
    const body = h('div', { class: 'job-body' }, h('p', { class: 'muted' }, 'Loading…'));
    const details = h('details', null, summary, body);
    const li = h('li', { class: `job ${job.status}`, 'data-job': String(job.id) }, details);
    const item = { li, summary, body, status: '', loaded: false };
    details.addEventListener('toggle', () => {
      if (details.open && !item.loaded) {
        item.loaded = true;
        void this.load(job.id, body);
      }
    });
    this.items.set(job.id, item);
    return item;
  }

  private async load(id: number, body: HTMLElement): Promise<void> {
    try {
      const job = await this.api.get<JobDetail>(`/v1/jobs/${id}`);
      replace(
        body,
        job.error ? h('p', { class: 'bad' }, job.error) : null,
        resultsView(job),
        FINISHED.has(job.status) ? null : h('p', { class: 'muted' }, 'Still running.'),
      );
    } catch (error) {
      replace(body, h('p', { class: 'bad' }, (error as Error).message));
    }
  }
}
