// SHOW HELP: the admin commands with their syntax.
import { table, type AdminCommand } from '../result.js';

export function showHelp(all: () => readonly AdminCommand[]): AdminCommand {
  return {
    syntax: 'SHOW HELP',
    description: 'this list',
    pattern: /^show\s+help$/i,
    async run() {
      return table(['command', 'description'], all().map((c) => [c.syntax, c.description]));
    },
  };
}
