import { parseArgs } from 'node:util';
import { realClock } from '../../src/clock.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import { ConfigError, defaultConfig, loadConfig, type XmemConfig } from '../config.js';
import { openXenHost } from '../host/open.js';
import { createLogger } from '../log.js';
import { Manager } from '../manager/manager.js';
import { startGcBetweenPasses } from '../manager/gc-between-passes.js';
import { toFifo } from '../manager/realtime.js';
import { ReservationBook } from '../admission/book.js';
import { withAdmissionPins } from '../admission/pins.js';
import { startAdmissionServer, type AdmissionServer } from '../admission/server.js';
import { startStateServer, type StateServer } from '../state/server.js';
import { stateSocketPath } from '../state/paths.js';

export const summary = 'the dom0 service: balance memory between VMs (systemd runs this)';

const USAGE = `usage: xmem run [--config FILE] [--check]

  --config FILE  JSON config (default: built-in defaults; see README "Configuration")
  --check        validate the config and exit (0 ok, 2 invalid)

Runs until SIGTERM/SIGINT, then stops cleanly, leaving every VM's target where it is;
a restart rebuilds its state from Xen and xenstore and carries on.
exit codes: 0 clean stop, 1 could not start (xenstore, xl), 2 usage or config error
`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`xmem run: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }

  let config: XmemConfig;
  try {
    config = values.config ? await loadConfig(values.config) : defaultConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`xmem run: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (values.check) {
    process.stdout.write(`config ok (policy ${config.policy.policy})\n`);
    return 0;
  }
  return serve(config);
}

async function serve(config: XmemConfig): Promise<number> {
  const log = createLogger(config.service.logLevel);
  const connect = () => connectXenstore({ path: config.service.xenstorePath, logger: log.child({ part: 'xenstore' }) });
  let xs;
  try {
    xs = await connect();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot connect to xenstore');
    return 1;
  }
  const host = await openXenHost(config.service, xs, log);
  if (host === null) {
    await xs.close().catch(() => {});
    return 1;
  }

  // Admission's reservation book exists before the manager, which reads it every pass; its
  // set-mem pins (qmemman.sock "<domid>:<bytes>") enter the policy as config pins.
  const svc = config.service;
  const book = new ReservationBook({ clock: realClock, timeoutMs: svc.reservationTimeoutMs });
  const manager = new Manager({
    xs, host, clock: realClock, config, logger: log, reconnect: connect,
    reservations: book.reservations,
    decide: withAdmissionPins(book),
  });

  let admission: AdmissionServer | null = null;
  if (svc.admissionSocket !== null || svc.qmemmanSocket !== null) {
    try {
      admission = await startAdmissionServer(manager, {
        book, clock: realClock, reserveKib: config.policy.hostFreeReserve,
        socketPath: svc.admissionSocket, qmemmanSocketPath: svc.qmemmanSocket,
        holdTimeoutMs: svc.reservationTimeoutMs, logger: log.child({ part: 'admission' }),
        ...(svc.admissionGroup !== undefined ? { group: svc.admissionGroup, qmemmanGroup: svc.admissionGroup } : {}),
      });
    } catch (err) {
      // Balancing running VMs matters more than admitting new ones: keep going, loudly.
      log.error({ err: (err as Error).message }, 'admission sockets unavailable; VM starts are not admitted');
    }
  }

  let stateServer: StateServer | null = null;
  try {
    const source = admission ? admission.stateSource(manager) : manager;
    stateServer = await startStateServer(source, {
      socketPath: stateSocketPath(svc.stateSocket), logger: log,
      ...(svc.stateGroup !== undefined ? { group: svc.stateGroup } : {}),
      ...(svc.metricsPort !== undefined ? { tcpPort: svc.metricsPort } : {}),
    });
  } catch (err) {
    // `xmem top` matters less than balancing: keep going without it.
    log.error({ err: (err as Error).message }, 'state socket unavailable; xmem top/status will not connect');
  }

  const collector = startGcBetweenPasses(manager, svc.gcBetweenPasses);
  log.info({ gcBetweenPasses: collector.status }, 'young-generation GC');
  await manager.start();
  // After start-up, so node's helper threads already exist and stay ordinary.
  const scheduling = await toFifo(process.pid, svc.fifoPriority);
  log[scheduling.startsWith('off: chrt') ? 'warn' : 'info']({ scheduling }, 'main thread scheduling');
  await new Promise<void>((resolve) => {
    // The handlers stay installed for the whole shutdown: execa's signal-exit re-raises a
    // signal once it is the last listener, which would kill us mid-stop.
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'stopping');
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await admission?.close().catch(() => {});
  collector.stop();
  await manager.stop();
  await stateServer?.close().catch(() => {});
  host.close();
  await xs.close().catch(() => {});
  log.flush?.();
  return 0;
}
