import { etcdClient } from './swarm-etcd.js';
import { oursClient } from './swarm-ours.js';
import type { SwarmClient, SwarmConnection } from './swarm.js';

/** The agents of the contender `connection` names, for the thread that asks. */
export function clientFor(connection: SwarmConnection): SwarmClient {
  return connection.kind === 'ours' ? oursClient(connection) : etcdClient(connection);
}
