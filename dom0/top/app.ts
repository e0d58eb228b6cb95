import type { HostState } from '../../src/schemas/state.js';
import { StateClient, describeEndpoint, type StateEndpoint } from '../state/client.js';
import type { ConnStatus } from './conn.js';
import { paletteFor } from './palette.js';
import { renderFrame, type Frame } from './render.js';
import { Screen } from './screen.js';
import { applyKey, initialView, keyFromKeypress, normalizeSelection, type ViewOptions } from './view.js';

/** Redraw at least this often so ages and the reconnect countdown move. */
const TICK_MS = 1000;

/**
 * The live `xmem top`: a StateClient feeding a pure renderer, keys feeding a pure reducer.
 * Resolves with the exit code when the viewer quits.
 */
export function runTop(endpoint: StateEndpoint, io: { input: NodeJS.ReadStream; output: NodeJS.WriteStream }): Promise<number> {
  const screen = new Screen(io.input, io.output);
  const pal = paletteFor(io.output);
  const where = describeEndpoint(endpoint);
  const client = new StateClient(endpoint);

  let latest: HostState | null = null;
  let frozen: HostState | null = null;
  let view: ViewOptions = initialView;
  let conn: ConnStatus = { state: 'connecting', where };
  let notice: string | null = null;
  let frame: Frame | null = null;

  const draw = (): void => {
    const state = view.paused ? frozen : latest;
    frame = renderFrame({ state, view, size: screen.size(), conn, nowMs: Date.now(), notice, palette: pal });
    view = normalizeSelection(view, frame.order);
    screen.draw(frame.lines);
  };

  return new Promise<number>((resolve) => {
    const tick = setInterval(draw, TICK_MS);
    const quit = (code: number): void => {
      clearInterval(tick);
      client.stop();
      screen.leave();
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      resolve(code);
    };
    const onSignal = (): void => quit(0);
    process.once('SIGTERM', onSignal);
    process.once('SIGHUP', onSignal);

    client.on('open', () => {
      conn = { state: 'live', where };
      draw();
    });
    client.on('state', (s) => {
      latest = s;
      notice = null;
      conn = { state: 'live', where };
      if (!view.paused) draw();
    });
    client.on('error', (e) => {
      notice = e.kind === 'invalid' ? `ignored a message from the service: ${e.message}` : null;
      draw();
    });
    client.on('disconnect', ({ reason, retryInMs }) => {
      conn = { state: 'down', where, reason, retryAtMs: retryInMs === null ? null : Date.now() + retryInMs };
      draw();
    });

    screen.enter(
      (str, key) => {
        const k = keyFromKeypress(str, key);
        if (!k) return;
        const next = applyKey(view, k, frame?.order ?? [], frame?.tableRows ?? 1);
        if (next === null) return quit(0);
        if (next.paused && !view.paused) frozen = latest;
        view = next;
        draw();
      },
      draw,
    );
    client.start();
    draw();
  });
}
