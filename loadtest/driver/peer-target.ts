import { randomUUID } from 'node:crypto';
import { type PeerKind, peerProtocol } from '../peers/peer-kind';
import { type LoadTarget, type PublishAck, requestJson, toWebSocketUrl } from './target';
import type { ConnectionSpec } from './worker-messages';

/**
 * A fan-out peer (loadtest/peers) as a load target. Each scope's publishes go to one node (by a
 * hash of the scope), which numbers them; connections are spread over the nodes round-robin.
 */
export function createPeerTarget(kind: PeerKind, nodeUrls: string[]): LoadTarget {
  const protocol = peerProtocol(kind);
  const nodeFor = (scope: string) => {
    let h = 0;
    for (let i = 0; i < scope.length; i++) h = (h * 31 + scope.charCodeAt(i)) >>> 0;
    return nodeUrls[h % nodeUrls.length]!;
  };
  return {
    name: kind,
    async prepareScopes(count) {
      return Array.from({ length: count }, () => `agent:${randomUUID()}`);
    },
    async connectionSpec(index, scopes): Promise<ConnectionSpec> {
      const node = nodeUrls[index % nodeUrls.length]!;
      return { url: protocol === 'sync' ? `${toWebSocketUrl(node)}/sync` : node, protocol, scopes };
    },
    async publish(scope, count, contentBytes): Promise<PublishAck> {
      return requestJson<PublishAck>(`${nodeFor(scope)}/publish`, { body: { scope, count, contentBytes } });
    },
    async deltaRequests() {
      return undefined;
    },
    async gatewayRssBytes() {
      return undefined;
    },
  };
}
