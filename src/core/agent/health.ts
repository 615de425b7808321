/**
 * Is an OpenAI-compatible endpoint ready for the agent? Says clearly when the server is down, the
 * model is not served, or tool calling is off (vLLM needs --enable-auto-tool-choice
 * --tool-call-parser hermes).
 */
export interface HealthReport {
  ok: boolean;
  models: string[];
  problems: string[];
}

export async function checkEndpoint(
  baseUrl: string,
  apiKey: string,
  model?: string,
  timeoutMs = 10_000,
): Promise<HealthReport> {
  const url = baseUrl.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  let models: string[] = [];
  try {
    const res = await fetch(`${url}/models`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    if (res.status === 401 || res.status === 403) {
      const fix = 'set it with "DRAG: Set API Key…" or DRAG_API_KEY';
      return { ok: false, models, problems: [`${url} refused the API key (HTTP ${res.status}); ${fix}`] };
    }
    if (!res.ok) return { ok: false, models, problems: [`${url}/models answered HTTP ${res.status}`] };
    const body = (await res.json()) as { data?: Array<{ id: string }> };
    models = (body.data ?? []).map((m) => m.id);
  } catch (err) {
    return {
      ok: false,
      models,
      problems: [`cannot reach ${url}: ${(err as Error).message}. Is the server running (vllm serve … --port …)?`],
    };
  }
  const problems: string[] = [];
  if (model && !models.includes(model))
    problems.push(`model "${model}" is not served at ${url}; it serves: ${models.join(', ') || 'nothing'}`);
  const probeModel = model && models.includes(model) ? model : models[0];
  if (probeModel) {
    try {
      const res = await fetch(`${url}/chat/completions`, {
        method: 'POST',
        headers,
        signal: AbortSignal.timeout(timeoutMs),
        body: JSON.stringify({
          model: probeModel,
          max_tokens: 1,
          tool_choice: 'auto',
          messages: [{ role: 'user', content: 'ping' }],
          tools: [{ type: 'function', function: { name: 'ping', parameters: { type: 'object', properties: {} } } }],
        }),
      });
      if (!res.ok) {
        const text = await res.text();
        problems.push(
          /tool.choice|enable-auto-tool-choice|tool-call-parser/i.test(text)
            ? `tool calling is off at ${url}: start vLLM with --enable-auto-tool-choice --tool-call-parser hermes`
            : `a test chat request failed with HTTP ${res.status}: ${text.slice(0, 200)}`,
        );
      }
    } catch (err) {
      problems.push(`a test chat request failed: ${(err as Error).message}`);
    }
  }
  return { ok: problems.length === 0, models, problems };
}
