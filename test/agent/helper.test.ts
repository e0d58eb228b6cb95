import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWatch, inForms, quietForms, type Raw } from '../../domU-agent/src/watch.js';
import { buildHelper, CgroupHog, HelperProc, privileged } from './native.js';
import { viewOf } from './raw.js';

/**
 * The native helper (domU-agent/native/psi-trigger.c), compiled here by the same script as
 * `npm run build:agent`, run against this machine's real /proc/pressure/memory (root).
 */
const built = buildHelper();
const skip = 'skip' in built ? built.skip : null;
if (skip) console.warn(`SKIP test/agent/helper.test.ts: the native helper could not be built here (${skip})`);
const bin = 'path' in built ? built.path : '';

describe.skipIf(skip !== null)('xmem-psi-trigger (native helper)', () => {
  let dir: string;
  let run: ReturnType<typeof privileged>;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-helper-test-'));
    run = privileged(bin, dir);
    if (run.note) console.warn(`test/agent/helper.test.ts: ${run.note}`);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.dirname(bin), { recursive: true, force: true });
  });
  const start = (args: string[]) => new HelperProc(run.cmd, [...run.pre, ...args]);

  it('is a static binary of modest size', () => {
    const elf = readFileSync(bin);
    expect(elf.subarray(1, 4).toString('latin1')).toBe('ELF');
    expect(elf.length).toBeLessThan(1.5 * 1024 * 1024);
  });

  it.each([
    [['-s', 'x'], /-s: expected a number/],
    [['-w', '0'], /-w: expected a number from 1/],
    [['-q'], /usage: xmem-psi-trigger/],
    [['extra'], /usage: xmem-psi-trigger/],
  ])('rejects %j with exit 2 and one line', async (args, message) => {
    const h = new HelperProc(bin, args);
    expect(await h.exit).toEqual({ code: 2, signal: null });
    expect(h.stderr).toMatch(message);
    expect(h.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a PSI file that is not on procfs (exit 3), and leaves it untouched', async () => {
    const fake = path.join(dir, 'memory');
    const text = 'some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';
    writeFileSync(fake, text);
    const h = new HelperProc(bin, ['-p', fake]);
    expect((await h.exit).code).toBe(3);
    expect(h.stderr).toMatch(/is not on procfs: no trigger possible\n$/);
    expect(readFileSync(fake, 'latin1')).toBe(text);
    const gone = new HelperProc(bin, ['-p', path.join(dir, 'nonexistent')]);
    expect((await gone.exit).code).toBe(3);
    expect(gone.stderr).toMatch(/cannot open .*nonexistent for a trigger: No such file or directory\n$/);
  });

  it('without CAP_SYS_RESOURCE, says that a 500 ms window needs it (exit 3)', async () => {
    if (!run.wrapper) return; // this machine's root has the capability: nothing to see
    const h = new HelperProc(bin, []);
    expect((await h.exit).code).toBe(3);
    expect(h.stderr).toBe('xmem-psi-trigger: kernel refused trigger "some 1 500000": windows that are not a multiple of 2 s need CAP_SYS_RESOURCE: Invalid argument\n');
  });

  it('arms a trigger on the real /proc/pressure/memory and exits 0 when its stdout is closed', async () => {
    const h = start([]);
    expect(await h.waitLine((l) => l === 'ready', 5000)).not.toBeNull();
    expect(h.child.exitCode).toBeNull();
    h.child.stdout!.destroy(); // the agent's read end goes away
    const t0 = performance.now();
    expect(await h.exit).toEqual({ code: 0, signal: null });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(h.stderr).toBe('');
  });

  it('exits 0 when its stdin is closed', async () => {
    const h = start([]);
    expect(await h.waitLine((l) => l === 'ready', 5000)).not.toBeNull();
    h.child.stdin!.end();
    expect(await h.exit).toEqual({ code: 0, signal: null });
  });

  it('wakes on a real memory stall (a hog in a 64 MiB memory cgroup) within the fast-path bound', async () => {
    const hog = CgroupHog.create();
    if (typeof hog === 'string') {
      if (process.env.CI === 'true') throw new Error(`CI=true but no memory stall can be made here: ${hog}`);
      console.warn(`SKIP real-stall check: ${hog}`);
      return;
    }
    const h = start(['-s', '1', '-w', '500000']);
    try {
      expect(await h.waitLine((l) => l === 'ready', 5000)).not.toBeNull();
      expect(await hog.ready()).toBeNull();
      const from = h.lines.length;
      const stall = await hog.go();
      expect(stall).not.toBeNull();
      const event = await h.waitLine((l) => l === 's', 2000, from);
      expect(event).not.toBeNull();
      // From the first growth of the total (seen by a 1 ms poll) to the event line here.
      expect(event!.at - stall!.t0).toBeLessThan(200);
    } finally {
      h.kill();
      await hog.dispose();
    }
  });

  it('with a meminfo watch to run, a refused trigger is not fatal: "ready mem <why>", and the watch works', async () => {
    const fake = path.join(dir, 'not-proc-memory');
    writeFileSync(fake, 'some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n');
    const meminfo = path.join(dir, 'meminfo-only');
    writeFileSync(meminfo, 'MemTotal: 4194304 kB\nMemFree: 3145728 kB\nBuffers: 0 kB\nCached: 0 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nMemAvailable: 3145728 kB\nCommitted_AS: 1048576 kB\n');
    const h = new HelperProc(bin, ['-p', fake, '-m', meminfo, '-i', '20']);
    try {
      const ready = await h.waitLine((l) => l.startsWith('ready'), 5000);
      expect(ready?.line).toBe(`ready mem ${fake} is not on procfs: no trigger possible`);
      for (let i = 0; i < 100 && !h.stderr.endsWith('\n'); i++) await new Promise((r) => setTimeout(r, 10)); // another pipe
      expect(h.stderr).toBe(`xmem-psi-trigger: ${fake} is not on procfs: no trigger possible; watching meminfo only\n`);
      h.send('w 0 10 1 0 0 0 0 0 0 0 0\n'); // MemTotal in [0, 10]: it is not
      expect(await h.waitLine((l) => l === 'm', 500)).not.toBeNull();
    } finally {
      h.kill();
    }
  });

  describe('meminfo watch', () => {
    /** A scripted meminfo with these raw values (balloon via its own file). */
    function writeRaw(file: string, balloonFile: string, raw: Raw): void {
      const names = ['MemTotal', 'MemFree', 'Buffers', 'Cached', 'SwapTotal', 'SwapFree', 'MemAvailable', 'Committed_AS'];
      const lines = names.map((n, i) => `${`${n}:`.padEnd(16)}${String(raw[i]).padStart(8)} kB`);
      lines.splice(3, 0, 'Active(anon):      123 kB', 'HugePages_Total:       0');
      writeFileSync(file, `${lines.join('\n')}\n`);
      writeFileSync(balloonFile, `${raw[8]}\n`);
    }

    it('fires "m" exactly when the agent\'s own evaluation says a point left the ranges', async () => {
      const meminfo = path.join(dir, 'meminfo');
      const balloon = path.join(dir, 'current_kb');
      const base = [4 << 20, 3 << 20, 10_000, 200_000, 1 << 20, 1 << 20, 3 << 20, 1 << 20, 4 << 20];
      writeRaw(meminfo, balloon, base);
      const h = start(['-m', meminfo, '-b', balloon, '-i', '20']);
      try {
        expect(await h.waitLine((l) => l === 'ready', 5000)).not.toBeNull();
        const pub = viewOf(base);
        const forms = quietForms(pub, pub, 30_000)!;
        // Points around the boundaries of the ranges, on either side.
        let rng = 7;
        const rand = () => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
        const points: number[][] = [base];
        for (let i = 0; i < 24; i++) points.push(base.map((v, c) => Math.max(1, Math.round(v + rand() * (c === 1 || c === 3 ? 40_000 : 25_000)))));
        let outside = 0;
        for (const p of points) {
          writeRaw(meminfo, balloon, p);
          const from = h.lines.length;
          h.send(encodeWatch(forms)); // (re)arms: the first check comes one interval later
          const fired = (await h.waitLine((l) => l === 'm', 150, from)) !== null;
          expect(fired, `point ${p.join(' ')}`).toBe(!inForms(forms, p));
          if (fired) outside++;
          h.send(encodeWatch(null));
        }
        expect(outside).toBeGreaterThan(4);
        expect(outside).toBeLessThan(points.length - 4);
      } finally {
        h.kill();
      }
    });

    it('does not sample without ranges, fires once per arming, and fires when meminfo cannot be read', async () => {
      const meminfo = path.join(dir, 'meminfo2');
      const balloon = path.join(dir, 'current_kb2');
      const base = [4 << 20, 3 << 20, 0, 0, 0, 0, 3 << 20, 1 << 20, 0];
      writeRaw(meminfo, balloon, base);
      const h = start(['-m', meminfo, '-i', '20']);
      try {
        expect(await h.waitLine((l) => l === 'ready', 5000)).not.toBeNull();
        const forms = quietForms(viewOf(base), viewOf(base), 30_000)!;
        writeRaw(meminfo, balloon, base.map((v, i) => (i === 6 ? v + 50_000 : v))); // avail beyond T
        await new Promise((r) => setTimeout(r, 100));
        const mems = () => h.lines.filter((l) => l.line === 'm').length; // ('s' lines: real stalls)
        expect(mems()).toBe(0); // no ranges yet: nothing looked at
        h.send(encodeWatch(forms));
        expect(await h.waitLine((l) => l === 'm', 500)).not.toBeNull();
        await new Promise((r) => setTimeout(r, 100));
        expect(mems()).toBe(1); // off until re-armed
        writeFileSync(meminfo, 'garbage\n');
        const from = h.lines.length;
        h.send(encodeWatch(forms));
        expect(await h.waitLine((l) => l === 'm', 500, from)).not.toBeNull();
        const before = h.lines.length;
        h.send('w 1 2 3\n'); // malformed: "e", no watch, no crash
        expect(await h.waitLine((l) => l === 'e', 500, before)).not.toBeNull();
        await new Promise((r) => setTimeout(r, 60));
        expect(h.child.exitCode).toBeNull();
      } finally {
        h.kill();
      }
    });
  });
});
