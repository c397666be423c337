// The openai SDK against sluice's ai-proxy: chat completions, plain and
// streamed, from the built-in mock provider ("demo"), an OpenAI-format
// provider relayed byte for byte ("gpt") and an Anthropic one translated
// ("claude").

import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

import { collect, CREATED, need, transport } from './env.mjs';

// maxRetries 0: every request the SDK makes is one the test counts on.
const client = new OpenAI({ baseURL: `${need('SLUICE_URL')}/v1`, apiKey: 'any-key', maxRetries: 0, ...transport });

const now = () => Math.floor(Date.now() / 1000);
const user = (content) => [{ role: 'user', content }];

function between(lo, value, hi) {
  assert.equal(Number.isInteger(value), true, `created ${value} is not an integer`);
  assert.equal(lo <= value && value <= hi, true, `created ${value} is not within [${lo}, ${hi}]`);
}

const text = (chunks) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

test('non-streaming chat from the built-in mock provider', async () => {
  const t0 = now();
  const { data, response } = await client.chat.completions
    .create({ model: 'demo', messages: user('hello there') })
    .withResponse();
  const t1 = now();
  const rid = response.headers.get('x-request-id');
  assert.match(rid, /^[0-9a-f]{32}$/);
  assert.equal(response.headers.get('x-sluice-provider'), 'mock');
  assert.equal(response.headers.get('x-sluice-model'), 'mock-1');
  assert.equal(data._request_id, rid);
  between(t0, data.created, t1);
  assert.deepEqual(data, {
    id: `chatcmpl-${rid}`,
    object: 'chat.completion',
    created: data.created,
    model: 'mock-1',
    choices: [{ index: 0, message: { role: 'assistant', content: 'mock reply to: hello there' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 },
  });
});

test('non-streaming chat relayed from an OpenAI provider', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt', messages: [{ role: 'system', content: 'be brief' }, ...user('hello there')] })
    .withResponse();
  assert.equal(response.headers.get('x-sluice-provider'), 'openai');
  assert.equal(response.headers.get('x-sluice-model'), 'gpt-4o-mini');
  assert.deepEqual(data, {
    id: 'chatcmpl-mock-1',
    object: 'chat.completion',
    created: CREATED,
    model: 'gpt-4o-mini',
    choices: [{
      index: 0,
      message: { role: 'assistant', content: 'mock reply to: hello there' },
      logprobs: null,
      finish_reason: 'stop',
    }],
    usage: { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 },
    system_fingerprint: 'fp_mock',
  });
});

test('non-streaming chat translated from an Anthropic provider', async () => {
  const data = await client.chat.completions.create({ model: 'claude', messages: user('hello there') });
  assert.deepEqual(data.choices, [{
    index: 0, message: { role: 'assistant', content: 'mock reply to: hello there' }, finish_reason: 'stop',
  }]);
  assert.equal(data.id, 'msg_mock_1');
  assert.equal(data.model, 'claude');
  assert.deepEqual(data.usage, {
    prompt_tokens: 2, completion_tokens: 5, total_tokens: 7,
    prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 },
  });
});

test('streamed chat from the built-in mock provider, chunk by chunk', async () => {
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'demo', messages: user('hi you'), stream: true })
    .withResponse();
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  const rid = response.headers.get('x-request-id');
  const chunks = await collect(stream);
  const created = chunks[0].created;
  const chunk = (delta, finish = null) => ({
    id: `chatcmpl-${rid}`, object: 'chat.completion.chunk', created, model: 'mock-1',
    choices: [{ index: 0, delta, finish_reason: finish }], usage: null,
  });
  assert.deepEqual(chunks, [
    chunk({ role: 'assistant', content: '' }), chunk({ content: 'mock' }), chunk({ content: ' reply' }),
    chunk({ content: ' to:' }), chunk({ content: ' hi' }), chunk({ content: ' you' }), chunk({}, 'stop'),
  ]);
  assert.equal(text(chunks), 'mock reply to: hi you');
});

test('streamed chat from an OpenAI provider, with the usage chunk asked for', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt', messages: user('hi you'), stream: true, stream_options: { include_usage: true },
  });
  const chunks = await collect(stream);
  assert.equal(chunks.length, 8);
  assert.equal(text(chunks), 'mock reply to: hi you');
  assert.deepEqual(chunks.map((c) => c.id), Array(8).fill('chatcmpl-mock-2'));
  assert.deepEqual(chunks.at(-2).choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 });
});

test('streamed chat from an OpenAI provider, without the usage chunk', async () => {
  // The gateway asks upstream for usage anyway and must take that chunk out.
  const chunks = await collect(await client.chat.completions.create({
    model: 'gpt', messages: user('one two three'), stream: true,
  }));
  assert.equal(chunks.length, 8);
  assert.equal(text(chunks), 'mock reply to: one two three');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.deepEqual(chunks.map((c) => c.usage), Array(8).fill(null));
});

test('streamed chat translated from an Anthropic provider', async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: 'claude', messages: user('hi you'), stream: true, stream_options: { include_usage: true },
  }));
  assert.equal(chunks.length, 8);
  assert.equal(text(chunks), 'mock reply to: hi you');
  assert.deepEqual(chunks.at(-2).choices, [{ index: 0, delta: {}, finish_reason: 'stop' }]);
  assert.deepEqual(chunks.at(-1).usage, {
    prompt_tokens: 2, completion_tokens: 5, total_tokens: 7,
    prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 },
  });
});

test('the SDK stream helper assembles the streamed text', async () => {
  const stream = client.beta.chat.completions.stream({ model: 'demo', messages: user('assemble me please') });
  const deltas = [];
  stream.on('content', (delta) => deltas.push(delta));
  const done = await stream.finalChatCompletion();
  assert.deepEqual(deltas, ['mock', ' reply', ' to:', ' assemble', ' me', ' please']);
  assert.deepEqual(done.choices[0].message.content, 'mock reply to: assemble me please');
  assert.equal(done.choices[0].finish_reason, 'stop');
  assert.equal(await stream.finalContent(), 'mock reply to: assemble me please');
});
