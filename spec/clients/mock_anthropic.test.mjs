// The official @anthropic-ai/sdk straight against spec/helpers/mock_llm.py's
// Anthropic mock. sluice has no Anthropic-format endpoint (clients speak
// OpenAI to it); this checks that the mock every Anthropic translation spec
// relies on speaks the wire format the real SDK accepts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';

import { ANTHROPIC_TOOLS, collect, need, thrown, transport } from './env.mjs';

const url = need('MOCK_ANTHROPIC_URL');
const key = need('MOCK_ANTHROPIC_KEY');
// maxRetries 0: the SDK retries 429 and 529 on its own.
const client = new Anthropic({ baseURL: url, apiKey: key, maxRetries: 0, ...transport });
const MODEL = 'claude-3-5-haiku-latest';
const ASK = 'please call tool now';
const user = (content) => [{ role: 'user', content }];
// The SDK's stream accumulator sets usage fields the stream never carried
// (cache_*, server_tool_use) to undefined; compare what JSON would keep.
const plain = (value) => JSON.parse(JSON.stringify(value));

test('messages.create, text', async () => {
  const msg = await client.messages.create({ model: MODEL, max_tokens: 100, system: 'be brief', messages: user('hello there') });
  assert.deepEqual(msg, {
    id: 'msg_mock_1',
    type: 'message',
    role: 'assistant',
    model: MODEL,
    content: [{ type: 'text', text: 'mock reply to: hello there' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 4, output_tokens: 5 },
  });
});

test('messages.create, a tool use and the answer to its result', async () => {
  const msg = await client.messages.create({ model: MODEL, max_tokens: 100, tools: ANTHROPIC_TOOLS, messages: user(ASK) });
  assert.deepEqual(msg.content, [{ type: 'tool_use', id: 'toolu_mock_2', name: 'lookup', input: { q: ASK } }]);
  assert.equal(msg.stop_reason, 'tool_use');
  assert.deepEqual(msg.usage, { input_tokens: 4, output_tokens: 5 });
  const answer = await client.messages.create({
    model: MODEL,
    max_tokens: 100,
    tools: ANTHROPIC_TOOLS,
    messages: [
      { role: 'user', content: ASK },
      { role: 'assistant', content: msg.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_mock_2', content: 'found it' }] },
    ],
  });
  assert.deepEqual(answer.content, [{ type: 'text', text: `mock reply to: ${ASK}` }]);
  assert.equal(answer.stop_reason, 'end_turn');
});

test('messages.create with stream: true, the raw events', async () => {
  const events = await collect(await client.messages.create({ model: MODEL, max_tokens: 100, messages: user('hi you'), stream: true }));
  // The SDK drops ping events itself.
  assert.deepEqual(events.map((e) => e.type), [
    'message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta',
    'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop',
  ]);
  assert.deepEqual(events[0].message, {
    id: 'msg_mock_4', type: 'message', role: 'assistant', model: MODEL, content: [],
    stop_reason: null, stop_sequence: null, usage: { input_tokens: 2, output_tokens: 1 },
  });
  assert.equal(events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta.text).join(''), 'mock reply to: hi you');
  assert.deepEqual(events[8], {
    type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 5 },
  });
});

test('messages.stream(), text assembled by the SDK', async () => {
  const stream = client.messages.stream({ model: MODEL, max_tokens: 100, messages: user('hi you') });
  const pieces = [];
  stream.on('text', (delta) => pieces.push(delta));
  const msg = await stream.finalMessage();
  assert.deepEqual(pieces, ['mock', ' reply', ' to:', ' hi', ' you']);
  assert.deepEqual(plain(msg), {
    id: 'msg_mock_5',
    type: 'message',
    role: 'assistant',
    model: MODEL,
    content: [{ type: 'text', text: 'mock reply to: hi you' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 2, output_tokens: 5 },
  });
  assert.equal(await stream.finalText(), 'mock reply to: hi you');
});

test('messages.stream(), a tool use assembled by the SDK', async () => {
  const stream = client.messages.stream({ model: MODEL, max_tokens: 100, tools: ANTHROPIC_TOOLS, messages: user(ASK) });
  const json = [];
  stream.on('inputJson', (partial) => json.push(partial));
  const msg = await stream.finalMessage();
  assert.deepEqual(json, ['{"q": ', '"pleas', 'e call', ' tool ', 'now"}']);
  assert.deepEqual(msg.content, [{ type: 'tool_use', id: 'toolu_mock_6', name: 'lookup', input: { q: ASK } }]);
  assert.equal(msg.stop_reason, 'tool_use');
  assert.deepEqual(plain(msg.usage), { input_tokens: 4, output_tokens: 5 });
});

function apiError(err, Class, status, type, message) {
  assert.equal(err instanceof Class, true, `expected ${Class.name}, got ${err.constructor.name}: ${err.message}`);
  assert.equal(err.status, status);
  const body = { type: 'error', error: { type, message } };
  assert.deepEqual(err.error, body);
  // The SDK puts the whole body in the message when it has no top-level one.
  assert.equal(err.message, `${status} ${JSON.stringify(body)}`);
}

test('errors: a wrong key, a missing field, an unknown path', async () => {
  const wrong = new Anthropic({ baseURL: url, apiKey: 'sk-ant-wrong', maxRetries: 0, ...transport });
  apiError(await thrown(() => wrong.messages.create({ model: MODEL, max_tokens: 10, messages: user('hi') })),
    Anthropic.AuthenticationError, 401, 'authentication_error', 'invalid x-api-key');
  apiError(await thrown(() => client.messages.create({ model: MODEL, messages: user('hi') })),
    Anthropic.BadRequestError, 400, 'invalid_request_error', 'max_tokens: Field required');
  apiError(await thrown(() => client.models.list()), Anthropic.NotFoundError, 404, 'not_found_error', 'Not found');
});

test('errors: 429 is the SDK\'s RateLimitError, 529 its InternalServerError', async () => {
  const limited = new Anthropic({ baseURL: need('MOCK_ANTHROPIC_LIMITED_URL'), apiKey: key, maxRetries: 0, ...transport });
  apiError(await thrown(() => limited.messages.create({ model: MODEL, max_tokens: 10, messages: user('hi') })),
    Anthropic.RateLimitError, 429, 'rate_limit_error', 'Number of requests has exceeded your rate limit. Please try again later.');
  const overloaded = new Anthropic({ baseURL: need('MOCK_ANTHROPIC_OVERLOADED_URL'), apiKey: key, maxRetries: 0, ...transport });
  apiError(await thrown(() => overloaded.messages.create({ model: MODEL, max_tokens: 10, messages: user('hi') })),
    Anthropic.InternalServerError, 529, 'overloaded_error', 'Overloaded');
});

test('errors: an error event mid-stream is raised by the SDK', async () => {
  // The driver scripted this mock to send one word, then its error event.
  const flaky = new Anthropic({ baseURL: need('MOCK_ANTHROPIC_FLAKY_URL'), apiKey: key, maxRetries: 0, ...transport });
  const stream = flaky.messages.stream({ model: MODEL, max_tokens: 100, messages: user('hi you') });
  const pieces = [];
  stream.on('text', (delta) => pieces.push(delta));
  const err = await thrown(() => stream.finalMessage());
  assert.deepEqual(pieces, ['mock']);
  const data = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';
  // This SDK version files an error event under APIConnectionError (no
  // status), with the event's data as the message.
  assert.equal(err.constructor, Anthropic.APIConnectionError, `got ${err.constructor.name}`);
  assert.equal(err.status, undefined);
  assert.equal(err.message, data);
});
