import * as vscode from 'vscode';
import { readLine } from '../core/io/jsonl';
import type { TrajectoryStore } from './trajectories/store';

export const RECORD_SCHEME = 'drag-record';

/**
 * Read-only documents that show one JSONL record pretty-printed, read from its byte offset:
 * opening a record never loads the (possibly huge) file into an editor.
 * URI: drag-record:/<file name>/<line>.json?<encoded file uri>#<position>
 */
export class RecordDocumentProvider implements vscode.TextDocumentContentProvider {
  constructor(private readonly store: TrajectoryStore) {}

  static uriFor(fileUri: vscode.Uri, position: number, line: number): vscode.Uri {
    const name = fileUri.path.split('/').slice(-2).join('-');
    return vscode.Uri.from({
      scheme: RECORD_SCHEME,
      path: `/${name}/line-${line}.json`,
      query: fileUri.toString(),
      fragment: String(position),
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const tracked = this.store.get(uri.query);
    const index = tracked?.index;
    const position = Number(uri.fragment);
    if (!tracked || !index || !(position >= 0 && position < index.offsets.length))
      return '// This record is no longer available.';
    const value = await readLine(tracked.uri.fsPath, index.offsets[position], index.lengths[position]);
    return `${JSON.stringify(value, null, 2)}\n`;
  }
}
