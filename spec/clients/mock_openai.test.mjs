// The openai SDK straight against spec/helpers/mock_llm.py's OpenAI mock, no
// gateway: checks that the mock speaks the wire format the official SDK
// accepts, since every ai-proxy spec trusts it.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import OpenAI from 'openai';

import { collect, CREATED, need, OPENAI_TOOLS, thrown, transport } from './env.mjs';

const url = need('MOCK_OPENAI_URL');
const key = need('MOCK_OPENAI_KEY');
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, ...transport });
const user = (content) => [{ role: 'user', content }];
const ASK = 'please call tool now';
const ARGS = '{"q": "please call tool now"}';

test('a chat completion', async () => {
  const data = await client.chat.completions.create({ model: 'gpt-4o', messages: user('hello there') });
  assert.deepEqual(data, {
    id: 'chatcmpl-mock-1',
    object: 'chat.completion',
    created: CREATED,
    model: 'gpt-4o',
    choices: [{ index: 0, message: { role: 'assistant', content: 'mock reply to: hello there' }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 },
    system_fingerprint: 'fp_mock',
  });
});

test('a streamed chat completion with the usage chunk', async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: 'gpt-4o', messages: user('hi you'), stream: true, stream_options: { include_usage: true },
  }));
  const chunk = (delta, finish = null) => ({
    id: 'chatcmpl-mock-2', object: 'chat.completion.chunk', created: CREATED, model: 'gpt-4o', system_fingerprint: 'fp_mock',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null,
  });
  assert.deepEqual(chunks, [
    chunk({ role: 'assistant', content: '' }), chunk({ content: 'mock' }), chunk({ content: ' reply' }),
    chunk({ content: ' to:' }), chunk({ content: ' hi' }), chunk({ content: ' you' }), chunk({}, 'stop'),
    { ...chunk({}), choices: [], usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 } },
  ]);
});

test('a tool call, plain and streamed through the SDK\'s accumulator', async () => {
  const plain = await client.chat.completions.create({ model: 'gpt-4o', messages: user(ASK), tools: OPENAI_TOOLS });
  assert.deepEqual(plain.choices[0], {
    index: 0,
    logprobs: null,
    finish_reason: 'tool_calls',
    message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_mock_3', type: 'function', function: { name: 'lookup', arguments: ARGS } }] },
  });
  assert.deepEqual(plain.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
  const stream = client.beta.chat.completions.stream({
    model: 'gpt-4o', messages: user(ASK), tools: OPENAI_TOOLS, stream_options: { include_usage: true },
  });
  const done = [];
  stream.on('tool_calls.function.arguments.done', (ev) => done.push([ev.index, ev.name, ev.arguments]));
  const final = await stream.finalChatCompletion();
  assert.deepEqual(done, [[0, 'lookup', ARGS]]);
  assert.equal(final.id, 'chatcmpl-mock-4');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(final.choices[0].message.tool_calls, [
    { id: 'call_mock_4', type: 'function', function: { name: 'lookup', arguments: ARGS } },
  ]);
  assert.deepEqual(final.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
});

test('embeddings, base64 as the SDK asks by default, and floats', async () => {
  const vector = (text, dims = 8) =>
    [...createHash('shake256', { outputLength: dims }).update(text).digest()].map((b) => (b - 128) / 128);
  const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one two', 'three'] });
  assert.deepEqual(b64, {
    object: 'list',
    model: 'text-embedding-3-small',
    data: [{ object: 'embedding', index: 0, embedding: vector('one two') }, { object: 'embedding', index: 1, embedding: vector('three') }],
    usage: { prompt_tokens: 3, total_tokens: 3 },
  });
  const floats = await client.embeddings.create({
    model: 'text-embedding-3-small', input: 'three', dimensions: 5, encoding_format: 'float',
  });
  assert.deepEqual(floats.data, [{ object: 'embedding', index: 0, embedding: vector('three', 5) }]);
});

test('models.list()', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data, ['gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small'].map(
    (id) => ({ id, object: 'model', created: CREATED, owned_by: 'mock' })));
});

function apiError(err, Class, status, body) {
  assert.equal(err instanceof Class, true, `expected ${Class.name}, got ${err.constructor.name}: ${err.message}`);
  assert.equal(err.status, status);
  assert.equal(err.message, `${status} ${body.message}`);
  assert.deepEqual(err.error, body);
  assert.equal(err.code, body.code);
  assert.equal(err.type, body.type);
  assert.equal(err.param, body.param);
}

test('errors: a wrong key, a bad body, an unknown path', async () => {
  const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-wrong-key', maxRetries: 0, ...transport });
  apiError(await thrown(() => wrong.chat.completions.create({ model: 'gpt-4o', messages: user('hi') })),
    OpenAI.AuthenticationError, 401, {
      message: 'Incorrect API key provided: sk-*****-key. You can find your API key at https://platform.openai.com/account/api-keys.',
      type: 'invalid_request_error', param: null, code: 'invalid_api_key',
    });
  apiError(await thrown(() => client.chat.completions.create({ model: 'gpt-4o', messages: 'hi' })),
    OpenAI.BadRequestError, 400, {
      message: 'Invalid type for \'messages\': expected an array.', type: 'invalid_request_error', param: 'messages', code: 'invalid_type',
    });
  apiError(await thrown(() => client.completions.create({ model: 'gpt-4o', prompt: 'hi' })),
    OpenAI.NotFoundError, 404, {
      message: 'Invalid URL (POST /v1/completions)', type: 'invalid_request_error', param: null, code: null,
    });
});

test('errors: a 429 is the SDK\'s RateLimitError', async () => {
  const limited = new OpenAI({ baseURL: `${need('MOCK_OPENAI_LIMITED_URL')}/v1`, apiKey: key, maxRetries: 0, ...transport });
  apiError(await thrown(() => limited.chat.completions.create({ model: 'gpt-4o', messages: user('hi') })),
    OpenAI.RateLimitError, 429, {
      message: 'Rate limit reached for requests. Please try again later.', type: 'requests', param: null, code: 'rate_limit_exceeded',
    });
});

test('errors: an error event mid-stream is raised by the SDK', async () => {
  // The driver scripted this mock to send one word, then its in-stream error.
  const flaky = new OpenAI({ baseURL: `${need('MOCK_OPENAI_FLAKY_URL')}/v1`, apiKey: key, maxRetries: 0, ...transport });
  const stream = await flaky.chat.completions.create({ model: 'gpt-4o', messages: user('hi you'), stream: true });
  const seen = [];
  const err = await thrown(async () => {
    for await (const chunk of stream) seen.push(chunk.choices[0].delta.content);
  });
  assert.deepEqual(seen, ['', 'mock']);
  const message = 'The server had an error while processing your request. Sorry about that!';
  assert.equal(err.constructor, OpenAI.APIError, `got ${err.constructor.name}`);
  assert.equal(err.status, undefined);
  assert.equal(err.message, message);
  assert.deepEqual(err.error, { message, type: 'server_error', param: null, code: null });
});
