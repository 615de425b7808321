/**
 * Thinking extraction as DRAG's collector does it (a <think> block, text before a lone </think>,
 * or a "Reasoning:" label): the one place that reads a model's reasoning out of its reply, used by
 * the agent and by processing. Returns null when there is none.
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

/**
 * The reply after its reasoning: the text after the last </think>, or all of it when there is none.
 * A Thinking model's template opens <think> in the prompt, so the reply may hold only the closing tag.
 */
export function afterThinking(content: string): string {
  const close = content.lastIndexOf('</think>');
  return close >= 0 ? content.slice(close + '</think>'.length) : content;
}
