// The lab's only image: busybox-static and its applets, imported into each engine (no registry).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { docker } from './engine.ts';
import { run } from './run.ts';
import { IMAGE } from './state.ts';

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

export function findBusybox(): string {
  const found = BUSYBOX_CANDIDATES.find((file) => existsSync(file));
  if (!found) throw new Error(`busybox not found at ${BUSYBOX_CANDIDATES.join(' or ')}; install busybox-static`);
  return found;
}

/** Builds <dir>/image/busybox.tar once: /bin/busybox, a symlink per applet, /tmp. Returns its path. */
export async function buildImageTar(dir: string): Promise<string> {
  const imageDir = path.join(dir, 'image');
  const tar = path.join(imageDir, 'busybox.tar');
  if (existsSync(tar)) return tar;
  const root = path.join(imageDir, 'rootfs');
  await rm(root, { recursive: true, force: true });
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await mkdir(path.join(root, 'tmp'), { mode: 0o1777 });
  const busybox = findBusybox();
  await copyFile(busybox, path.join(root, 'bin', 'busybox'));
  const applets = (await run(busybox, ['--list'])).stdout.split('\n').filter((name) => /^[\w.[-]+$/.test(name) && name !== 'busybox');
  await Promise.all(applets.map((applet) => symlink('busybox', path.join(root, 'bin', applet))));
  const partial = `${tar}.partial`;
  await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', partial, '.']);
  await rename(partial, tar);
  await rm(root, { recursive: true, force: true });
  return tar;
}

export async function importImage(dockerHost: string, tar: string): Promise<void> {
  await docker(dockerHost, ['import', '--message', 'crossdock lab busybox', tar, IMAGE]);
}
