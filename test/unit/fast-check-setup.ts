// Property-based tests (*.fuzz.test.ts) run with a fixed seed, so a CI run is reproducible
// and a red run is not a roll of the dice. Explore new inputs locally with FC_SEED=random
// (or any number); fast-check prints the seed and the counterexample of a failure.
import fc from 'fast-check'

const env = process.env.FC_SEED
if (env !== 'random') fc.configureGlobal({ seed: env != null && env !== '' ? Number(env) : 20261130 })
