// The controller list: parsing, and which controller is tried next as controllers fail, turn
// out to be standbys naming a leader, or lead.
import { describe, expect, it } from 'vitest';
import { ControllerListError, ControllerRotation, MAX_LEADER_REDIRECTS_PER_ROUND, parseControllerList } from './controllers.ts';

const A = 'http://10.0.0.5:7800';
const B = 'http://10.0.0.6:7800';
const C = 'http://10.0.0.7:7800';

describe('parseControllerList', () => {
  it('splits on commas, trims, drops blanks, trailing slashes and repeats, keeps order', () => {
    expect(parseControllerList(`${B}/ , ${A},,${B}`)).toStrictEqual([B, A]);
    expect(parseControllerList('https://proxy.example/crossdock/')).toStrictEqual(['https://proxy.example/crossdock']);
  });

  it.each([
    ['', /^no controller given; pass --controller/],
    [' , ', /^no controller given/],
    [`${A},10.0.0.6:7800x`, /^controller "10.0.0.6:7800x" is not a URL; use http:\/\/<controller address>:7800/],
    [`${A},ws://b:1`, /^controller URL must start with http:\/\/ or https:\/\/, not ws: \(in "ws:\/\/b:1"\)$/],
    ['http://u:p@a:7800', /has a query, fragment or credentials/],
    ['http://a:7800/?x=1', /has a query, fragment or credentials/],
  ])('refuses %j', (text, message) => {
    expect(() => parseControllerList(text)).toThrow(ControllerListError);
    expect(() => parseControllerList(text)).toThrow(message);
  });
});

describe('ControllerRotation', () => {
  it('with one controller: tries it, and a failure ends the round', () => {
    const r = new ControllerRotation([A]);
    expect(r.next()).toBe(A);
    expect(r.roundFailed()).toBe(false);
    r.failed(A);
    expect(r.roundFailed()).toBe(true);
    r.resetRound();
    expect(r.next()).toBe(A);
    expect(r.roundFailed()).toBe(false);
  });

  it('goes down the list on failures; the round fails only when every URL did', () => {
    const r = new ControllerRotation([A, B, C]);
    expect(r.next()).toBe(A);
    r.failed(A);
    expect(r.roundFailed()).toBe(false);
    expect(r.next()).toBe(B);
    r.failed(B);
    expect(r.next()).toBe(C);
    r.failed(C);
    expect(r.roundFailed()).toBe(true);
    // The next round starts after the last one that failed, not always at the head.
    r.resetRound();
    expect(r.next()).toBe(A);
  });

  it('follows a standby to the leader it names at once, and sticks to the leader', () => {
    const r = new ControllerRotation([A, B]);
    expect(r.next()).toBe(A);
    expect(r.notLeader(A, `${B}/`)).toBe(true);
    expect(r.roundFailed()).toBe(false);
    expect(r.next()).toBe(B);
    r.attached(B);
    // The session with B ends (B restarted, say): B is tried first again.
    expect(r.next()).toBe(B);
  });

  it('follows a leader that is not in the list (its advertised URL)', () => {
    const r = new ControllerRotation([A, B]);
    expect(r.notLeader(A, C)).toBe(true);
    expect(r.next()).toBe(C);
    r.attached(C);
    expect(r.next()).toBe(C);
    r.failed(C);
    // A turned out to be a standby earlier: the walk goes on after it.
    expect(r.next()).toBe(B);
  });

  it('after the leader dies: its URL fails, the standby names the dead leader (not followed again), the round fails, the next one finds the new leader', () => {
    const r = new ControllerRotation([A, B]);
    r.attached(A);
    expect(r.next()).toBe(A);
    r.failed(A); // connection refused: A was killed
    expect(r.next()).toBe(B);
    expect(r.notLeader(B, A)).toBe(false); // B still has A on record: A already failed this round
    expect(r.roundFailed()).toBe(true);
    r.resetRound();
    expect(r.next()).toBe(A);
    r.failed(A);
    expect(r.next()).toBe(B);
    r.attached(B); // B took over
    expect(r.next()).toBe(B);
  });

  it('a standby that knows no leader counts as a failure', () => {
    const r = new ControllerRotation([A, B]);
    expect(r.notLeader(A, undefined)).toBe(false);
    expect(r.next()).toBe(B);
    expect(r.notLeader(B, '')).toBe(false);
    expect(r.roundFailed()).toBe(true);
  });

  it('a standby naming itself is not followed', () => {
    const r = new ControllerRotation([A, B]);
    expect(r.notLeader(A, A)).toBe(false);
    expect(r.next()).toBe(B);
  });

  it('standbys naming each other in a loop: bounded redirects, then the round fails', () => {
    const r = new ControllerRotation([A, B]);
    const named = ['http://x1:7800', 'http://x2:7800', 'http://x3:7800', 'http://x4:7800', 'http://x5:7800', 'http://x6:7800'];
    let followed = 0;
    let url = r.next();
    for (const leader of named) {
      if (r.notLeader(url, leader)) followed++;
      url = r.next();
      if (r.roundFailed()) break;
    }
    expect(followed).toBe(MAX_LEADER_REDIRECTS_PER_ROUND);
    // After the redirects ran out, the rest of the list is still tried before giving up.
    while (!r.roundFailed()) {
      r.failed(r.next());
    }
    expect(r.roundFailed()).toBe(true);
    r.resetRound();
    expect(r.notLeader(r.next(), 'http://x1:7800')).toBe(true);
  });

  it('a redirect target that fails drops back to the list', () => {
    const r = new ControllerRotation([A, B]);
    expect(r.notLeader(A, C)).toBe(true);
    r.failed(C);
    expect(r.next()).toBe(B);
    expect(r.roundFailed()).toBe(false);
    r.failed(B);
    expect(r.roundFailed()).toBe(true);
  });

  it('refuses an empty list', () => {
    expect(() => new ControllerRotation([])).toThrow(ControllerListError);
  });
});
