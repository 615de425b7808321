/**
 * Thinking extraction (DRAG-SPEC §3.4): the one place that reads a model's reasoning out of its
 * reply, used by the agent and by processing. Returns null when there is none.
 */
export function extractThinking(content: string | null | undefined, options: { labels?: boolean } = {}): string | null {
  if (!content) return null;
  const open = content.indexOf('<think>');
  const close = content.indexOf('</think>');
  if (open >= 0 && close > open) return content.slice(open + '<think>'.length, close).trim();
  if (close >= 0 && open < 0) {
    const before = content.slice(0, close).trim();
    if (before) return before;
  }
  if (options.labels === false) return null;
  const m = /(?:reasoning|thinking|let me think):\s*([\s\S]*?)(?:\n\s*\n|$)/i.exec(content);
  return m ? m[1].trim() || null : null;
}
