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

/** Longest string `t` a ping may carry (contract v1.1). */
export const MAX_PING_T_LENGTH = 64;
/**
 * What a ping may carry to be echoed in its pong (contract v1.1): a finite number or a string of
 * at most 64 characters, so an echoed value is bounded by its schema and nothing a client sends
 * is serialised back beyond that (a nested `t` once overflowed the serialiser's stack).
 */
export const PingT = z.union([z.number(), z.string().check(z.maxLength(MAX_PING_T_LENGTH))]);
export type PingT = z.infer<typeof PingT>;
export const PingFrame = z.object({ type: z.literal('ping'), t: z.optional(PingT) });

/** Longest token an `auth` frame may carry (a JWT with a thousand scope patterns fits). */
export const MAX_AUTH_TOKEN_LENGTH = 32 * 1024;
/**
 * **Extra to the contract:** replaces the connection's token in place (a refresh before `exp`),
 * instead of reconnecting. The new token must have the same `sub`; answered with `authed`.
 */
export const AuthFrame = z.object({
  type: z.literal('auth'),
  token: z.string().check(z.minLength(1), z.maxLength(MAX_AUTH_TOKEN_LENGTH)),
});

export const ClientFrame = z.discriminatedUnion('type', [
  SubscribeFrame,
  UnsubscribeFrame,
  PingFrame,
  AuthFrame,
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type SubscribeFrame = z.infer<typeof SubscribeFrame>;
export type UnsubscribeFrame = z.infer<typeof UnsubscribeFrame>;
export type PingFrame = z.infer<typeof PingFrame>;
export type AuthFrame = z.infer<typeof AuthFrame>;

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
export const PongFrame = z.object({ type: z.literal('pong'), t: z.optional(PingT) });
/** Answer to an accepted `auth` frame (extra to the contract): the new token's `exp`, in seconds. */
export const AuthedFrame = z.object({
  type: z.literal('authed'),
  exp: z.number(),
});
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
  AuthedFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type BootstrapFrame = z.infer<typeof BootstrapFrame>;
export type SyncFrame = z.infer<typeof SyncFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type PongFrame = z.infer<typeof PongFrame>;
export type SubscribedFrame = z.infer<typeof SubscribedFrame>;
export type AuthedFrame = z.infer<typeof AuthedFrame>;
