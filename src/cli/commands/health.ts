import { parseArgs } from 'node:util';
import { checkEndpoint } from '../../core/agent/health';
import { type CliCommand, UsageError } from '../args';

export const healthCommand: CliCommand = {
  name: 'health',
  summary: 'check that an OpenAI-compatible endpoint serves the model with tool calling',
  usage: 'drag health --base-url URL [--model M] [--api-key K | env DRAG_API_KEY] [--json]',
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'base-url': { type: 'string' },
        model: { type: 'string' },
        'api-key': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (!values['base-url']) throw new UsageError('--base-url is required');
    const report = await checkEndpoint(
      values['base-url'],
      values['api-key'] ?? process.env.DRAG_API_KEY ?? 'abc123',
      values.model,
    );
    if (values.json) io.stdout(`${JSON.stringify(report)}\n`);
    else {
      io.stdout(`models: ${report.models.join(', ') || '(none)'}\n`);
      for (const p of report.problems) io.stdout(`problem: ${p}\n`);
      if (report.ok) io.stdout('ok\n');
    }
    return report.ok ? 0 : 1;
  },
};
