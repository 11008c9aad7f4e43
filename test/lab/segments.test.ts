// The segment layout is pure: checked here without root. The lab itself is in lab.test.ts.
import { describe, expect, it } from 'vitest';
import { up } from './lab.ts';
import { hostAddress, MAX_HOSTS_PER_SEGMENT, MAX_SEGMENTS, segmentLayout, segmentsOfHosts } from './state.ts';

describe('lab segments', () => {
  it('splits the hosts in order, as evenly as possible, the first segments taking one more', () => {
    expect(segmentsOfHosts(3, 1)).toEqual([1, 1, 1]);
    expect(segmentsOfHosts(4, 2)).toEqual([1, 1, 2, 2]);
    expect(segmentsOfHosts(5, 2)).toEqual([1, 1, 1, 2, 2]);
    expect(segmentsOfHosts(7, 3)).toEqual([1, 1, 1, 2, 2, 3, 3]);
    expect(segmentsOfHosts(2, 2)).toEqual([1, 2]);
  });

  it('keeps segment 1 the LAN of a one-segment lab and gives later ones disjoint /27s of 203.0.113.0/24', () => {
    expect(segmentLayout(1)).toEqual([{ index: 1, netns: 'cdlab-lan', bridge: 'br0', cidr: '198.51.100.0/24', prefixLength: 24, router: null }]);
    const all = segmentLayout(MAX_SEGMENTS);
    expect(all.map((segment) => [segment.cidr, segment.router])).toEqual([
      ['198.51.100.0/24', '198.51.100.254'],
      ['203.0.113.64/27', '203.0.113.94'],
      ['203.0.113.96/27', '203.0.113.126'],
      ['203.0.113.128/27', '203.0.113.158'],
      ['203.0.113.160/27', '203.0.113.190'],
      ['203.0.113.192/27', '203.0.113.222'],
    ]);
    expect(all.map((segment) => segment.netns)).toEqual(['cdlab-lan', 'cdlab-lan2', 'cdlab-lan3', 'cdlab-lan4', 'cdlab-lan5', 'cdlab-lan6']);
    expect(() => segmentLayout(MAX_SEGMENTS + 1)).toThrow(`room for ${MAX_SEGMENTS} segments`);
  });

  it('numbers hosts as a one-segment lab does in segment 1, and from the block start in later ones, below the router', () => {
    const [lan, second] = segmentLayout(2);
    expect(hostAddress(2, lan, 2)).toBe('198.51.100.12');
    expect(hostAddress(3, second, 1)).toBe('203.0.113.65');
    expect(hostAddress(40, second, MAX_HOSTS_PER_SEGMENT)).toBe('203.0.113.93');
  });

  it('refuses impossible counts with a reason, before touching anything', async () => {
    await expect(up({ hosts: 2, segments: 3, dir: '/nonexistent/lab' })).rejects.toThrow('--segments 3 needs at least 3 hosts (one per segment), not 2');
    await expect(up({ hosts: 4, segments: 0, dir: '/nonexistent/lab' })).rejects.toThrow(`--segments must be an integer from 1 to ${MAX_SEGMENTS}, not 0`);
    await expect(up({ hosts: 8, segments: 1.5, dir: '/nonexistent/lab' })).rejects.toThrow('--segments must be an integer');
  });
});
