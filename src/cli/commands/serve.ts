import { loadConfig } from '../../server/config.js';
import { ConfigError, SERVE_FLAGS, type SettingName, type Settings } from '../../server/settings.js';
import { serve as startServing } from '../../server/serve.js';
import { UsageError, type Command, type OptionSpec } from '../command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'Serve the registry over HTTP until SIGTERM or SIGINT.',
  details: 'Every option can also be set by the environment variable in its help.',
  options: Object.fromEntries(
    SERVE_FLAGS.map(({ flag, help }): [string, OptionSpec] => [flag, { type: 'string', value: 'VALUE', help }]),
  ),
  async run(context) {
    const settings: Settings = {};
    for (const [name, value] of Object.entries(process.env)) settings[name as SettingName] = value;
    for (const { flag, env } of SERVE_FLAGS) {
      const value = context.values[flag];
      if (typeof value === 'string') settings[env] = value;
    }
    try {
      await startServing(loadConfig(settings));
    } catch (error) {
      // A setting the operator got wrong is a usage error (exit 2); a database that cannot be
      // opened or a port in use is a failure (exit 1), reported by its own message.
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
  },
};
