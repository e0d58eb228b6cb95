import { parseArgs } from 'node:util';
import { realClock } from '../../src/clock.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import { ConfigError, defaultConfig, loadConfig, type XmemConfig } from '../config.js';
import { XlHost, execaXl } from '../host/xl-host.js';
import { createLogger } from '../log.js';
import { Manager } from '../manager/manager.js';
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
  const host = new XlHost({ clock: realClock, run: execaXl(config.service.xlPath), infoEveryMs: config.service.xlInfoEveryMs });
  try {
    await host.facts();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot read the domain list with xl');
    await xs.close().catch(() => {});
    return 1;
  }

  // TODO(lead): wire ADMIT's admission server (dom0/admission/server.ts) here once it lands:
  // its reservations feed `reservations` below and it listens on config.service.admissionSocket.
  const manager = new Manager({ xs, host, clock: realClock, config, logger: log, reconnect: connect });

  let stateServer: StateServer | null = null;
  try {
    stateServer = await startStateServer(manager, { socketPath: stateSocketPath(config.service.stateSocket), logger: log });
  } catch (err) {
    // `xmem top` matters less than balancing: keep going without it.
    log.error({ err: (err as Error).message }, 'state socket unavailable; xmem top/status will not connect');
  }

  await manager.start();
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info({ signal: sig }, 'stopping');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await manager.stop();
  await stateServer?.close().catch(() => {});
  await xs.close().catch(() => {});
  log.flush?.();
  return 0;
}
