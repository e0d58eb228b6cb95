import { afterAll, beforeAll, describe } from 'vitest';
import { connectXenstore } from '../../src/xenstore/client.js';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { defineConformance } from './conformance.js';
import { definePeerTests } from './peer-tests.js';

const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/xenstore/oxenstored.test.ts: real oxenstored unavailable (${skip})`);

describe.skipIf(skip !== null)('real oxenstored (Debian xen-utils-4.17)', () => {
  let daemon: PeerDaemon;
  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'ocaml' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  defineConformance('oxenstored', () => connectXenstore({ path: daemon.socketPath }));
  definePeerTests(() => daemon);
});
