/**
 * The agent's system prompt and tool schemas: one home, used by the agent (collection and
 * evaluation) and by the training-data exports, so a model is trained on the prompt it will be
 * run with (the original DRAG's collector, evaluator and SFT data each used different prompts).
 * Tool schemas are DRAG's, unchanged.
 */
export const SYSTEM_PROMPT =
  'You are a document question-answering assistant. You answer questions about a collection of PDF documents.\n' +
  '\n' +
  'You have two tools:\n' +
  '- search_documents: searches the documents and returns images of the matching pages. ' +
  'Use keywords, exact "phrases" in double quotes, and upper-case AND, OR, NOT ' +
  '(words are ANDed by default; * and ? are wildcards).\n' +
  '- provide_answer: gives your final answer with citations.\n' +
  '\n' +
  'The answer is certainly in the documents. If a search returns nothing useful, rephrase it: ' +
  'try synonyms, abbreviations, fewer or different words. Study the page images carefully.\n' +
  'Finish with provide_answer: "answer" is a list with one element per answer item, ' +
  "as short as possible and in the document's own wording; " +
  'each citation names the exact PDF file name shown with the page and its integer page number.\n' +
  'Always use one of the two tools.';

export const SEARCH_TOOL = {
  type: 'function',
  function: {
    name: 'search_documents',
    description:
      'Search the document collection and get back images of the matching pages. ' +
      'The query may use keywords, "exact phrases" and the boolean operators AND, OR, NOT.',
    parameters: {
      type: 'object',
      properties: { query: { type: 'string', description: 'Search query: keywords, "exact phrases", AND/OR/NOT.' } },
      required: ['query'],
    },
  },
} as const;

export const ANSWER_TOOL = {
  type: 'function',
  function: {
    name: 'provide_answer',
    description: 'Give the final structured answer with citations of the pages it comes from.',
    parameters: {
      type: 'object',
      properties: {
        answer: { type: 'array', items: { type: 'string' } },
        citations: {
          type: 'array',
          items: {
            type: 'object',
            properties: { file: { type: 'string' }, page: { type: 'integer' } },
            required: ['file', 'page'],
          },
        },
      },
      required: ['answer', 'citations'],
    },
  },
} as const;

export const TOOLS = [SEARCH_TOOL, ANSWER_TOOL] as const;

/** Appended (not saved) on the last turn, when provide_answer is forced, as DRAG's collector does. */
export const FINAL_STEP_MESSAGE =
  'This is the last step: give your final answer now with provide_answer, citing the pages you found.';

/** DRAG's tag mode (its evaluator's --tag-mode): no tools; the model writes <think> then <search>. */
export const TAG_MODE_PROMPT =
  'You are a search assistant. For the question, first reason inside <think>...</think>, ' +
  'then write one search query inside <search>...</search>. ' +
  'The query may use keywords, "exact phrases" and upper-case AND, OR, NOT.';
