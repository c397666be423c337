// The openai SDK against sluice's ai-proxy: tool calls, asked for and
// answered, plain and streamed, from an OpenAI provider ("gpt", relayed) and
// an Anthropic one ("claude", translated both ways). The mocks call the
// first tool when the last user message contains "call tool".

import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

import { collect, need, OPENAI_TOOLS, transport } from './env.mjs';

const client = new OpenAI({ baseURL: `${need('SLUICE_URL')}/v1`, apiKey: 'any-key', maxRetries: 0, ...transport });
const ASK = 'please call tool now';
const ask = (model, extra = {}) => ({ model, tools: OPENAI_TOOLS, messages: [{ role: 'user', content: ASK }], ...extra });

// What the SDK's own accumulator (the stream helper) makes of a streamed call.
async function streamedCall(model) {
  const stream = client.beta.chat.completions.stream(ask(model));
  const done = [];
  stream.on('tool_calls.function.arguments.done', (ev) => done.push([ev.index, ev.name, ev.arguments]));
  const final = await stream.finalChatCompletion();
  return { final, done };
}

test('OpenAI provider: a tool call, then the answer to its result', async () => {
  const first = await client.chat.completions.create(ask('gpt'));
  assert.deepEqual(first.choices, [{
    index: 0,
    logprobs: null,
    finish_reason: 'tool_calls',
    message: {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_mock_1', type: 'function', function: { name: 'lookup', arguments: '{"q": "please call tool now"}' } }],
    },
  }]);
  assert.deepEqual(JSON.parse(first.choices[0].message.tool_calls[0].function.arguments), { q: ASK });
  const second = await client.chat.completions.create({
    model: 'gpt',
    tools: OPENAI_TOOLS,
    messages: [
      { role: 'user', content: ASK },
      first.choices[0].message,
      { role: 'tool', tool_call_id: 'call_mock_1', content: 'found it' },
    ],
  });
  assert.deepEqual(second.choices[0].message, { role: 'assistant', content: `mock reply to: ${ASK}` });
  assert.equal(second.choices[0].finish_reason, 'stop');
});

test('OpenAI provider: a streamed tool call, assembled from the raw chunks', async () => {
  const chunks = await collect(await client.chat.completions.create(ask('gpt', { stream: true })));
  const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
  assert.deepEqual(deltas[0], {
    index: 0, id: 'call_mock_3', type: 'function', function: { name: 'lookup', arguments: '' },
  });
  assert.equal(deltas.map((d) => d.function.arguments).join(''), '{"q": "please call tool now"}');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
});

test('OpenAI provider: a streamed tool call, assembled by the SDK', async () => {
  const { final, done } = await streamedCall('gpt');
  assert.deepEqual(done, [[0, 'lookup', '{"q": "please call tool now"}']]);
  assert.equal(final.id, 'chatcmpl-mock-4');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(final.choices[0].message.content, null);
  assert.deepEqual(final.choices[0].message.tool_calls, [
    { id: 'call_mock_4', type: 'function', function: { name: 'lookup', arguments: '{"q": "please call tool now"}' } },
  ]);
});

test('Anthropic provider: a tool call, then the answer to its result', async () => {
  const first = await client.chat.completions.create(ask('claude'));
  assert.equal(first.id, 'msg_mock_1');
  assert.deepEqual(first.choices, [{
    index: 0,
    finish_reason: 'tool_calls',
    message: {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'toolu_mock_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"please call tool now"}' } }],
    },
  }]);
  const second = await client.chat.completions.create({
    model: 'claude',
    tools: OPENAI_TOOLS,
    messages: [
      { role: 'user', content: ASK },
      first.choices[0].message,
      { role: 'tool', tool_call_id: 'toolu_mock_1', content: 'found it' },
    ],
  });
  assert.deepEqual(second.choices[0].message, { role: 'assistant', content: `mock reply to: ${ASK}` });
  assert.equal(second.choices[0].finish_reason, 'stop');
});

test('Anthropic provider: a streamed tool call, assembled by the SDK', async () => {
  const { final, done } = await streamedCall('claude');
  assert.deepEqual(done, [[0, 'lookup', '{"q": "please call tool now"}']]);
  assert.equal(final.model, 'claude');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(final.choices[0].message.content, null);
  assert.deepEqual(final.choices[0].message.tool_calls, [
    { id: 'toolu_mock_3', type: 'function', function: { name: 'lookup', arguments: '{"q": "please call tool now"}' } },
  ]);
});
