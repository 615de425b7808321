/**
 * The context budget of one model request, estimated before it is sent: the agent keeps the prompt
 * plus `max_tokens` under the server's `max_model_len` (vLLM refuses a request that does not fit with
 * HTTP 400 rather than truncating it) by dropping the oldest page images and sizing `max_tokens`.
 * The estimate errs high: text at 3 characters a token, images at Qwen-VL's one token per 28×28
 * pixels.
 */
import type { ChatRequest, ContentPart } from './client';

/** Page images kept in the conversation by default: the newest two searches at the default top-k of 3. */
export const DEFAULT_KEEP_IMAGES = 6;

/** Tokens kept free beyond the estimate, for the chat template's own tokens. */
const SAFETY_TOKENS = 256;

/** Tokens charged for an image whose size cannot be read: Qwen-VL at the default 1,003,520-pixel budget. */
const UNKNOWN_IMAGE_TOKENS = 1280;

/** Width and height of a PNG or JPEG given as bytes, or null when the header is not one of those. */
export function imageSize(bytes: Buffer): { width: number; height: number } | null {
  // PNG: the IHDR chunk's width and height follow the 8-byte signature and the chunk header.
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47 && bytes.toString('ascii', 12, 16) === 'IHDR')
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  // JPEG: walk the markers to the first start-of-frame (SOF0-SOF15 except DHT, JPG and DAC).
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let i = 2;
    while (i + 9 < bytes.length) {
      if (bytes[i] !== 0xff) return null;
      const marker = bytes[i + 1];
      const length = bytes.readUInt16BE(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
        return { height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7) };
      i += 2 + length;
    }
  }
  return null;
}

/**
 * Qwen-VL's token count for an image: one token per 28×28 pixels (14-pixel patches merged 2×2), plus
 * its two markers.
 */
export function imageTokens(url: string): number {
  const comma = url.indexOf(',');
  if (!url.startsWith('data:') || comma < 0) return UNKNOWN_IMAGE_TOKENS;
  // The header is enough: decode only the first few kilobytes of the base64.
  const head = Buffer.from(url.slice(comma + 1, comma + 1 + 65_536), 'base64');
  const size = imageSize(head);
  if (!size) return UNKNOWN_IMAGE_TOKENS;
  return Math.ceil(size.width / 28) * Math.ceil(size.height / 28) + 2;
}

const textTokens = (text: string) => Math.ceil(text.length / 3);

/** An upper estimate of the prompt tokens of a request (messages, tool schemas, images). */
export function estimatePromptTokens(request: Pick<ChatRequest, 'messages' | 'tools'>): number {
  let tokens = request.tools ? textTokens(JSON.stringify(request.tools)) : 0;
  for (const m of request.messages) {
    tokens += 8;
    if (typeof m.content === 'string') tokens += textTokens(m.content);
    else if (Array.isArray(m.content))
      for (const part of m.content as ContentPart[])
        tokens += part.type === 'text' ? textTokens(part.text) : imageTokens(part.image_url.url);
    if (m.role === 'assistant' && m.tool_calls)
      for (const c of m.tool_calls) tokens += 16 + textTokens(c.function.name + c.function.arguments);
  }
  return tokens + SAFETY_TOKENS;
}

/**
 * `max_tokens` for a prompt of `promptTokens` under `maxModelLen`: the configured value when it fits,
 * else what is left (at least 1).
 */
export function fitMaxTokens(configured: number, promptTokens: number, maxModelLen: number | null): number {
  if (maxModelLen === null) return configured;
  return Math.max(1, Math.min(configured, maxModelLen - promptTokens));
}

/** The least completion budget worth sending before more images are dropped: half the configured one. */
export function minCompletionTokens(configured: number): number {
  return Math.max(1, Math.floor(configured / 2));
}

/**
 * vLLM's refusal of a request longer than `--max-model-len` (OpenAIServing._validate_input in
 * vllm/entrypoints/openai/serving_engine.py), in its older ("However, you requested N tokens (P in the
 * messages, C in the completion)") and newer ("your request has P input tokens") wording: the context
 * length and the prompt's token count, when the message gives them; null for any other message.
 */
export function contextLengthError(message: string): { maxModelLen: number | null; inputTokens: number | null } | null {
  const limit = /maximum context length is (\d+)/i.exec(message);
  if (!limit) return null;
  const input = /(\d+) input tokens|\((\d+) in the messages/i.exec(message);
  return { maxModelLen: Number(limit[1]), inputTokens: input ? Number(input[1] ?? input[2]) : null };
}
