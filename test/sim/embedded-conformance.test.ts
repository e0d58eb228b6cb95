import { connectEmbedded, EmbeddedStore } from '../../src/xenstore/embedded/index.js';
import { defineConformance } from '../xenstore/conformance.js';

// XS's suite, unchanged, against the embedded store: the same assertions the real C
// xenstored and oxenstored pass, so the simulator's store cannot drift from them.
const store = new EmbeddedStore();
defineConformance('embedded store', async () => connectEmbedded(store, 0));
