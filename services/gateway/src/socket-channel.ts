import type { ConnectionRegistry, Socket, UserData } from './connection-registry';
import type { FrameWriter } from './frame-writer';
import type { SlowConsumerPolicy } from './slow-consumer';
import type { SubscriberChannel } from './subscription';

/** The node-wide services a channel forwards to (one object shared by every channel). */
export interface ChannelServices {
  connections: ConnectionRegistry;
  writer: FrameWriter;
  slowConsumers: SlowConsumerPolicy;
}

/**
 * A connection as its subscriptions see it. One small object per connection with methods on the
 * prototype — not four closures per connection — since it lives as long as the connection.
 */
export class SocketChannel implements SubscriberChannel {
  readonly #ws: Socket;
  readonly #ud: UserData;
  readonly #services: ChannelServices;

  constructor(ws: Socket, ud: UserData, services: ChannelServices) {
    this.#ws = ws;
    this.#ud = ud;
    this.#services = services;
  }

  send(frame: Parameters<SubscriberChannel['send']>[0], shareKey?: object): boolean {
    return this.#services.writer.send(this.#ws, frame, shareKey);
  }

  writable(): Promise<void> {
    return this.#services.slowConsumers.writable(this.#ws, this.#ud);
  }

  joinTopic(scope: string): void {
    if (this.#ud.closed) return;
    this.#services.connections.joinTopic(this.#ws, scope);
  }

  leaveTopic(scope: string): void {
    this.#services.connections.leaveTopic(this.#ws, scope, !this.#ud.closed);
  }
}
