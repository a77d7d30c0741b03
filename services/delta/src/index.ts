/**
 * The delta service: the read path of OpenAgents Sync. Consistent bootstrap snapshots, replay of
 * a scope's log after a cursor, and retention of that log.
 */
export { createDeltaReader, type DeltaReader } from './reader';
