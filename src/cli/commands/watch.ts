import { RegistryUnreachableError, type Role, type WatchStateChange } from '../../client/index.js';
import { formatDuration, parseDuration } from '../../domain/duration.js';
import { describeError, integerOption, stringOption, UsageError, type Command } from '../command.js';
import { eventLine } from '../output.js';

export const watch: Command = {
  name: 'watch',
  summary: 'Print registry changes as they happen, until interrupted.',
  details:
    'Reconnects by itself and resumes after the last change it printed. If the registry no longer\n' +
    'holds that far back, it prints the current VMs ("resync") and carries on. With --json, one\n' +
    'JSON object per line. A registry that cannot be reached is reported on stderr and retried\n' +
    'with backoff; with --timeout, an outage that long ends the watch with exit code 1.',
  options: {
    since: { type: 'string', value: 'REVISION', help: 'start after this revision (default: from now)' },
    role: { type: 'string', value: 'ROLE', help: 'only VMs of this role' },
    id: { type: 'string', value: 'ID', help: 'only this VM' },
    timeout: { type: 'string', value: 'DURATION', help: 'give up when the registry stays unreachable this long, such as 30s' },
  },
  connects: true,
  async run(context) {
    const role = stringOption(context, 'role') as Role | undefined;
    const id = stringOption(context, 'id');
    const since = integerOption(context, 'since');
    const timeoutText = stringOption(context, 'timeout');
    const timeout = timeoutText === undefined ? undefined : parseDuration(timeoutText);
    if (timeout === 0 || (timeoutText !== undefined && timeout === undefined)) {
      throw new UsageError(`--timeout must be a duration such as 30s, 5m or 1500ms (got "${timeoutText}")`);
    }

    const giveUp = new AbortController();
    let outage: { timer: NodeJS.Timeout; error: unknown } | undefined;
    const onStateChange = (change: WatchStateChange) => {
      if (change.state === 'watching') {
        if (outage) context.note('vm-registry watch: connected again');
        clearTimeout(outage?.timer);
        outage = undefined;
        return;
      }
      context.note(`vm-registry watch: ${describeError(change.error).message}; retrying in ${formatDuration(change.retryIn)}`);
      if (outage) outage.error = change.error;
      else if (timeout !== undefined) outage = { error: change.error, timer: setTimeout(() => giveUp.abort(), timeout) };
    };
    const signal = AbortSignal.any([context.signal, giveUp.signal]);
    try {
      for await (const item of context.client().watch({ since, role, id, signal, onStateChange })) {
        if (context.json) context.print(JSON.stringify(item));
        else if (item.type === 'resync') {
          context.note(`resync at revision ${item.revision}: some changes were missed; ${item.vms.length} VMs now`);
          for (const vm of item.vms) context.print(`${context.styles.dim(`#${item.revision}`)} current ${vm.id} ${vm.role} ${vm.status} ${vm.address}`);
        } else context.print(eventLine(item, context.styles));
      }
    } finally {
      clearTimeout(outage?.timer);
    }
    if (giveUp.signal.aborted && !context.signal.aborted) {
      throw new RegistryUnreachableError(`${describeError(outage?.error).message}; gave up after --timeout ${timeoutText}`);
    }
  },
};
