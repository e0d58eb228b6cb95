/**
 * The embedded (in-process) xenstore: `const store = new EmbeddedStore()`, then
 * `connectEmbedded(store, domid)` for each client (dom0 = 0, a guest = its domid).
 */
import { EmbeddedConnection } from './connection.js';
import type { EmbeddedStore } from './store.js';

export { EmbeddedStore, QUOTA } from './store.js';
export { EmbeddedConnection } from './connection.js';
export { XenstoreError } from '../errors.js';

export function connectEmbedded(store: EmbeddedStore, domid = 0): EmbeddedConnection {
  return new EmbeddedConnection(store, domid);
}
