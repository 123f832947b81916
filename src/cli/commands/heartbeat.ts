import { isTransient } from '../../client/index.js';
import { sleep } from '../../client/timing.js';
import { parseDuration } from '../../domain/duration.js';
import { argument, describeError, stringOption, UsageError, type Command, type Context } from '../command.js';

async function beat(context: Context, id: string): Promise<void> {
  const result = await context.client().heartbeat(id, { signal: context.signal });
  // One compact line per beat, JSON or not: the loop's output reads as a log.
  context.print(context.json ? JSON.stringify(result) : `${result.id} lastSeen ${result.lastSeen}`);
}

export const heartbeat: Command = {
  name: 'heartbeat',
  summary: 'Refresh the lastSeen of a VM, once or repeatedly.',
  args: 'ID',
  details:
    'With --every, beats in the foreground until interrupted (Ctrl-C or SIGTERM). A registry that\n' +
    'cannot be reached is reported and retried at the next beat; a VM the registry does not know\n' +
    'ends the loop with exit code 1 (register it again first).',
  positionals: { min: 1, max: 1 },
  options: { every: { type: 'string', value: 'DURATION', help: 'beat at this interval, such as 2m or 30s' } },
  connects: true,
  async run(context) {
    const id = argument(context);
    const every = stringOption(context, 'every');
    if (every === undefined) return beat(context, id);
    const interval = parseDuration(every);
    if (interval === undefined || interval <= 0) throw new UsageError(`--every must be a duration such as 2m, 30s or 1500ms (got "${every}")`);
    while (!context.signal.aborted) {
      try {
        await beat(context, id);
      } catch (error) {
        if (context.signal.aborted) break;
        if (!isTransient(error)) throw error;
        context.note(`vm-registry heartbeat: ${describeError(error).message}; retrying in ${every}`);
      }
      await sleep(interval, context.signal);
    }
  },
};
