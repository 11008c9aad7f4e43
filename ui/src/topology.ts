// The fleet as a graph, laid out by cytoscape.js. Hosts are nodes (colour, shape and the
// word all say the status), grouped by the segment they report. Up to MESH_MAX_HOSTS the
// edges are the host pairs themselves, each coloured by whether both ends hold their routes;
// past that the N^2 pairs (and N labels) would be a hairball, so hosts are clustered: one node
// per segment, status and route state ("480 hosts · online, routes applied"), linked to its
// segment in the colour of those routes; selecting a cluster filters the host table to it.
// Past GRAPH_MAX_HOSTS only the host table is shown (the page says so). When a host is selected and the controller reports how it reaches each peer
// (GET /v1/hosts/:name `peers`), its edges show that too: solid direct, dashed VXLAN.
import cytoscape from 'cytoscape';
import { ROUTE_STATE_TEXT, edgeState, routeState, type Host, type Peer } from './model.ts';

export const MESH_MAX_HOSTS = 24;
export const GRAPH_MAX_HOSTS = 2_000;
const FIT_MAX_ZOOM = 1.6;
/** Subnets written under a host's name; more are summed up. */
const LABEL_MAX_SUBNETS = 3;
const CLUSTER_MIN_SIZE = 24;
/** Circle radius in graph units: small fleets stay compact, larger ones get room for labels. */
const CIRCLE_MIN_RADIUS = 110;
const CIRCLE_RADIUS_PER_HOST = 26;

const COLOURS = {
  online: '#1a7f37',
  offline: '#cf222e',
  pending: '#9a6700',
  applied: '#1a7f37',
  routesPending: '#bf8700',
  failed: '#cf222e',
  segment: '#57606a',
};

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: 'node.host',
    style: {
      label: 'data(label)',
      'text-wrap': 'wrap',
      'text-valign': 'bottom',
      'text-margin-y': 4,
      'font-size': 11,
      'font-family': 'system-ui, sans-serif',
      color: '#1f2328',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.8,
      'text-background-padding': '1px',
      width: 26,
      height: 26,
      'border-width': 2,
      'border-color': '#ffffff',
    },
  },
  { selector: 'node.online', style: { 'background-color': COLOURS.online, shape: 'ellipse' } },
  { selector: 'node.offline', style: { 'background-color': COLOURS.offline, shape: 'diamond' } },
  { selector: 'node.pending', style: { 'background-color': COLOURS.pending, shape: 'round-rectangle' } },
  { selector: 'node:selected', style: { 'border-color': '#0969da', 'border-width': 4 } },
  {
    selector: 'node.segment',
    style: {
      label: 'data(label)',
      'text-valign': 'top',
      'font-size': 11,
      color: COLOURS.segment,
      'background-color': '#f6f8fa',
      'border-color': '#d0d7de',
      'border-width': 1,
      shape: 'round-rectangle',
    },
  },
  {
    selector: 'node.cluster',
    style: {
      label: 'data(label)',
      'text-wrap': 'wrap',
      'text-valign': 'bottom',
      'text-margin-y': 4,
      'font-size': 11,
      'font-family': 'system-ui, sans-serif',
      color: '#1f2328',
      width: 'data(size)',
      height: 'data(size)',
      'border-width': 2,
      'border-color': '#ffffff',
    },
  },
  {
    selector: 'node.hub',
    style: { label: 'data(label)', 'font-size': 12, 'background-color': COLOURS.segment, shape: 'hexagon', width: 34, height: 34, color: '#1f2328' },
  },
  { selector: 'edge', style: { width: 2, 'curve-style': 'straight', opacity: 0.85 } },
  { selector: 'edge.applied', style: { 'line-color': COLOURS.applied } },
  { selector: 'edge.pending', style: { 'line-color': COLOURS.routesPending, 'line-style': 'dashed', 'line-dash-pattern': [2, 3] } },
  { selector: 'edge.failed', style: { 'line-color': COLOURS.failed, width: 3 } },
  { selector: 'edge.vxlan', style: { 'line-style': 'dashed', 'line-dash-pattern': [8, 4] } },
  { selector: 'edge.unreachable', style: { 'line-color': COLOURS.failed, 'line-style': 'dotted' } },
  { selector: 'edge.faded', style: { opacity: 0.15 } },
  { selector: 'edge.encapsulated', style: { 'line-color': COLOURS.segment, 'line-style': 'dashed', width: 3 } },
];

function byName(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true });
}

function segmentOf(host: Host): string | null {
  return typeof host.segment === 'string' && host.segment !== '' ? host.segment : null;
}

export class Topology {
  private readonly cy: cytoscape.Core;
  private shape = '';
  mode: 'mesh' | 'clustered' | 'table' = 'mesh';

  constructor(container: HTMLElement, onSelect: (name: string) => void, onCluster: (filter: string) => void) {
    this.cy = cytoscape({
      container,
      style: STYLE,
      minZoom: 0.1,
      maxZoom: 3,
      boxSelectionEnabled: false,
      autoungrabify: false,
    });
    this.cy.on('tap', 'node.host', (event) => onSelect(event.target.data('name') as string));
    this.cy.on('tap', 'node.cluster', (event) => onCluster(event.target.data('filter') as string));
  }

  /** Brings the graph up to date with the hosts; re-lays it out only when its shape changed. */
  update(hosts: Host[], selected: string | null, peers: Peer[] | undefined): void {
    this.mode = hosts.length > GRAPH_MAX_HOSTS ? 'table' : hosts.length > MESH_MAX_HOSTS ? 'clustered' : 'mesh';
    const elements: cytoscape.ElementDefinition[] = [];
    const segments = new Set<string>();
    for (const h of hosts) {
      const seg = segmentOf(h);
      if (seg) segments.add(seg);
    }
    if (this.mode === 'table') {
      this.cy.elements().remove();
      this.shape = '';
      return;
    }
    if (this.mode === 'mesh') {
      for (const seg of segments) elements.push({ group: 'nodes', data: { id: `seg:${seg}`, label: `segment ${seg}` }, classes: 'segment' });
    } else {
      const hubs = [...new Set(hosts.map((h) => segmentOf(h) ?? 'lan'))];
      for (const seg of hubs) {
        const count = hosts.filter((h) => (segmentOf(h) ?? 'lan') === seg).length;
        elements.push({
          group: 'nodes',
          data: { id: `hub:${seg}`, label: `${seg === 'lan' ? 'shared network' : `segment ${seg}`} (${count} hosts)` },
          classes: 'hub',
        });
      }
      for (let i = 0; i < hubs.length; i++) {
        for (let j = i + 1; j < hubs.length; j++) {
          elements.push({
            group: 'edges',
            data: { id: `hubs:${hubs[i]}|${hubs[j]}`, source: `hub:${hubs[i]}`, target: `hub:${hubs[j]}` },
            classes: 'encapsulated',
          });
        }
      }
    }
    if (this.mode === 'clustered') {
      const clusters = new Map<string, { seg: string; status: Host['status']; state: ReturnType<typeof routeState>; count: number }>();
      for (const h of hosts) {
        const seg = segmentOf(h) ?? 'lan';
        const state = routeState(h);
        const key = `${seg}|${h.status}|${state}`;
        const c = clusters.get(key) ?? { seg, status: h.status, state, count: 0 };
        c.count++;
        clusters.set(key, c);
      }
      for (const [key, c] of clusters) {
        elements.push({
          group: 'nodes',
          data: {
            id: `cluster:${key}`,
            label: `${c.count} host${c.count === 1 ? '' : 's'} · ${c.status}\n${ROUTE_STATE_TEXT[c.state]}`,
            size: Math.round(CLUSTER_MIN_SIZE + 8 * Math.log2(c.count)),
            filter: [c.status, c.state, c.seg === 'lan' ? '' : c.seg].join(' ').trim(),
          },
          classes: `cluster ${c.status}`,
        });
        elements.push({ group: 'edges', data: { id: `up:${key}`, source: `cluster:${key}`, target: `hub:${c.seg}` }, classes: c.state });
      }
    }
    if (this.mode === 'mesh') {
      for (const h of hosts) {
        const seg = segmentOf(h);
        const cidrs = h.subnets.map((s) => s.cidr);
        const subnets =
          cidrs.length <= LABEL_MAX_SUBNETS
            ? cidrs.join('\n')
            : `${cidrs.slice(0, LABEL_MAX_SUBNETS - 1).join('\n')}\n+${cidrs.length - LABEL_MAX_SUBNETS + 1} more`;
        elements.push({
          group: 'nodes',
          data: {
            id: `host:${h.name}`,
            name: h.name,
            label: `${h.name} · ${h.status}\n${h.address}${subnets ? `\n${subnets}` : ''}`,
            ...(seg ? { parent: `seg:${seg}` } : {}),
          },
          classes: `host ${h.status}`,
        });
      }
    }
    if (this.mode === 'mesh') {
      const peerOf = new Map((peers ?? []).map((p) => [p.host, p]));
      for (let i = 0; i < hosts.length; i++) {
        for (let j = i + 1; j < hosts.length; j++) {
          const a = hosts[i]!;
          const b = hosts[j]!;
          const classes: string[] = [edgeState(a, b)];
          if (selected && a.name !== selected && b.name !== selected) classes.push('faded');
          const peer = selected === a.name ? peerOf.get(b.name) : selected === b.name ? peerOf.get(a.name) : undefined;
          if (peer?.reach === 'vxlan') classes.push('vxlan');
          if (peer?.reach === 'unreachable') classes.push('unreachable');
          if (peer?.applied === false && !classes.includes('failed')) classes[0] = 'pending';
          elements.push({
            group: 'edges',
            data: { id: `pair:${a.name}|${b.name}`, source: `host:${a.name}`, target: `host:${b.name}` },
            classes: classes.join(' '),
          });
        }
      }
    }
    this.apply(elements, selected);
  }

  private apply(elements: cytoscape.ElementDefinition[], selected: string | null): void {
    const wanted = new Set(elements.map((e) => e.data.id!));
    const shape = `${this.mode}\n${elements
      .filter((e) => e.group === 'nodes')
      .map((e) => `${e.data.id}>${e.data.parent ?? ''}`)
      .join('\n')}`;
    this.cy.batch(() => {
      this.cy.elements().forEach((el) => {
        if (!wanted.has(el.id())) el.remove();
      });
      for (const def of elements) {
        const existing = this.cy.getElementById(def.data.id!);
        if (existing.nonempty() && (existing.isNode() ? existing.data('parent') === def.data.parent : true)) {
          existing.data(def.data);
          existing.classes(def.classes as string);
        } else {
          existing.remove();
          this.cy.add(def);
        }
      }
      this.cy.nodes().unselect();
      if (selected) this.cy.getElementById(`host:${selected}`).select();
    });
    if (shape !== this.shape) {
      this.shape = shape;
      this.layout();
    }
  }

  layout(): void {
    const nodes = this.cy.nodes().length;
    if (nodes === 0) return;
    // A full mesh reads best on a circle (every pair visible, in name order); segments and
    // clusters are laid out force-directed, with room for their labels.
    const options = (
      this.mode === 'mesh' && this.cy.nodes('.segment').empty()
        ? {
            name: 'circle',
            animate: false,
            padding: 40,
            radius: Math.max(CIRCLE_MIN_RADIUS, nodes * CIRCLE_RADIUS_PER_HOST),
            sort: (a: cytoscape.NodeSingular, b: cytoscape.NodeSingular) => byName(a.id(), b.id()),
          }
        : {
            name: 'cose',
            animate: false,
            randomize: true,
            padding: 30,
            nodeDimensionsIncludeLabels: true,
            nodeRepulsion: () => 400_000,
            idealEdgeLength: () => (this.mode === 'mesh' ? 120 : 90),
            numIter: 1500,
          }
    ) as cytoscape.LayoutOptions;
    this.cy.layout(options).run();
    this.fit();
  }

  resize(): void {
    this.cy.resize();
    this.fit();
  }

  /** Fits the graph, but a few hosts are not blown up to fill the box. */
  private fit(): void {
    this.cy.fit(undefined, 30);
    if (this.cy.zoom() > FIT_MAX_ZOOM) {
      this.cy.zoom(FIT_MAX_ZOOM);
      this.cy.center();
    }
  }
}
