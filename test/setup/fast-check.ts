import fc from 'fast-check';

/**
 * Property tests run on a fixed seed, so a run is repeatable and CI cannot go red on a draw it
 * never made before. `FC_SEED=random npm test` explores new inputs (the seed of a failure is
 * printed; `FC_SEED=<n>` replays it).
 */
const raw = process.env.FC_SEED ?? '20261201';
if (raw !== 'random') {
  const seed = Number(raw);
  if (!Number.isInteger(seed)) throw new Error(`FC_SEED must be an integer or "random", not ${JSON.stringify(raw)}`);
  fc.configureGlobal({ seed });
}
