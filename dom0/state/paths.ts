/**
 * Where the dom0 service listens for `xmem top`, `xmem status` and Prometheus by default.
 * XMEM_STATE_SOCKET overrides it for every client (and for tests); `--socket` overrides both.
 */
export const DEFAULT_STATE_SOCKET = '/run/xmem/state.sock';

export function stateSocketPath(flag?: string): string {
  return flag || process.env.XMEM_STATE_SOCKET || DEFAULT_STATE_SOCKET;
}

/** The URL path of the WebSocket stream; HTTP `/metrics` lives beside it on the same socket. */
export const STATE_WS_PATH = '/state';
export const METRICS_PATH = '/metrics';
