/** The fan-out peers the bench compares the gateway with. */
export const PEER_KINDS = ['uws-local', 'ws-redis', 'socketio-redis'] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

export function isPeerKind(value: string): value is PeerKind {
  return (PEER_KINDS as readonly string[]).includes(value);
}

/** How a driver talks to a peer's sockets: the contract's raw JSON frames, or Socket.IO events. */
export function peerProtocol(kind: PeerKind): 'sync' | 'socket.io' {
  return kind === 'socketio-redis' ? 'socket.io' : 'sync';
}
