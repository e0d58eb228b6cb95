import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectXenstore } from '../../src/xenstore/client.js';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { defineConformance } from './conformance.js';

/**
 * The character-device transport (/dev/xen/xenbus in a guest) on the real C xenstored: a
 * raw-mode pty stands in for the device (test/peer/pty-bridge.py forwards its bytes to the
 * daemon's socket), so the client's device path — blocking reads on the thread pool, frames
 * split at arbitrary points — runs the whole conformance suite.
 */

const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/xenstore/xenbus-device.test.ts: real C xenstored unavailable (${skip})`);

const here = path.dirname(fileURLToPath(import.meta.url));

describe.skipIf(skip !== null)('xenbus character-device transport (pty stand-in) on the real C xenstored', () => {
  let daemon: PeerDaemon;
  const bridges: ChildProcess[] = [];
  const devices: string[] = [];
  // The system interpreter starts faster than a version-manager shim.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

  /**
   * A client on a fresh device (one bridge = one daemon connection, like each open of the real
   * device). Closing it also ends its bridge: the transport's blocking read holds a thread-pool
   * thread until the device side goes away.
   */
  async function deviceClient() {
    const { dev, bridge } = await deviceFor();
    devices.push(dev);
    const xs = await connectXenstore({ path: dev });
    const close = xs.close.bind(xs);
    xs.close = async () => {
      await close();
      bridge.kill('SIGKILL');
    };
    return xs;
  }

  async function deviceFor(): Promise<{ dev: string; bridge: ChildProcess }> {
    const bridge = spawn(python, [path.join(here, '../peer/pty-bridge.py'), daemon.socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    bridges.push(bridge);
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: bridge.stdout! }).once('line', resolve);
      bridge.once('exit', (code) => reject(new Error(`pty bridge exited ${code}`)));
    });
    return { dev: line.trim(), bridge };
  }

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
  });
  afterAll(async () => {
    // Killing a bridge ends the device's pending blocking read (EIO), freeing its thread.
    for (const b of bridges) b.kill('SIGKILL');
    await daemon?.stop();
  });

  it('the stand-in is a character device, so the device transport is chosen', async () => {
    const xs = await deviceClient();
    expect(statSync(devices[0]!).isCharacterDevice()).toBe(true);
    try {
      await xs.write('/dev-test/k', 'via the device');
      expect(await xs.read('/dev-test/k')).toBe('via the device');
      expect(await xs.read('/dev-test/k')).toBe('via the device');
    } finally {
      await xs.close();
    }
  });

  defineConformance('C xenstored through the xenbus device transport', deviceClient);
});
