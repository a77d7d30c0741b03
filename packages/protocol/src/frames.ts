import * as z from 'zod/mini';
import { WS_ERROR_CODES } from './errors';
import { SyncEvent } from './events';
import { Scope } from './scope';

/* Client → server ------------------------------------------------------------------------ */

export const SubscribeFrame = z.object({
  type: z.literal('subscribe'),
  scope: Scope,
  lastSyncId: z.optional(z.int().check(z.nonnegative())),
});
export const UnsubscribeFrame = z.object({ type: z.literal('unsubscribe'), scope: Scope });
export const PingFrame = z.object({ type: z.literal('ping'), t: z.optional(z.unknown()) });

export const ClientFrame = z.discriminatedUnion('type', [SubscribeFrame, UnsubscribeFrame, PingFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type SubscribeFrame = z.infer<typeof SubscribeFrame>;
export type UnsubscribeFrame = z.infer<typeof UnsubscribeFrame>;
export type PingFrame = z.infer<typeof PingFrame>;

/* Server → client ------------------------------------------------------------------------ */

export const BootstrapFrame = z.object({
  type: z.literal('bootstrap'),
  scope: z.string(),
  models: z.record(z.string(), z.array(z.record(z.string(), z.unknown()))),
  lastSyncId: z.int().check(z.nonnegative()),
  reset: z.optional(z.literal(true)),
  /** v1.1: more pages of this bootstrap follow; apply the scope's state once one arrives without it. */
  more: z.optional(z.literal(true)),
});
export const SyncFrame = z.object({
  type: z.literal('sync'),
  scope: z.string(),
  events: z.array(SyncEvent),
  latestSyncId: z.int().check(z.nonnegative()),
});
export const ErrorFrame = z.object({
  type: z.literal('error'),
  code: z.enum(WS_ERROR_CODES),
  message: z.string(),
  scope: z.optional(z.string()),
});
export const PongFrame = z.object({ type: z.literal('pong'), t: z.optional(z.unknown()) });
/** Sent once a subscription is live (extra to the contract; clients may ignore it). */
export const SubscribedFrame = z.object({
  type: z.literal('subscribed'),
  scope: z.string(),
  lastSyncId: z.int().check(z.nonnegative()),
});

export const ServerFrame = z.discriminatedUnion('type', [
  BootstrapFrame,
  SyncFrame,
  ErrorFrame,
  PongFrame,
  SubscribedFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type BootstrapFrame = z.infer<typeof BootstrapFrame>;
export type SyncFrame = z.infer<typeof SyncFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type PongFrame = z.infer<typeof PongFrame>;
export type SubscribedFrame = z.infer<typeof SubscribedFrame>;
