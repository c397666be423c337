// The openai SDK against sluice's ai-proxy: errors, as the SDK parses them
// into its error classes. The gateway's own errors have the shape
// {"error": {"type", "code", "message", "request_id"}}; a provider's error is
// relayed in OpenAI's shape with the provider's status.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

import { collect, need, thrown, transport } from './env.mjs';

// maxRetries 0: the SDK would retry a 429 on its own, and the driver checks
// that the rate-limited provider saw exactly one request.
const client = new OpenAI({ baseURL: `${need('SLUICE_URL')}/v1`, apiKey: 'any-key', maxRetries: 0, ...transport });
const user = (content) => [{ role: 'user', content }];

// An error the gateway decided itself: every field the SDK exposes.
function gatewayError(err, Class, status, code, type, message) {
  assert.equal(err instanceof Class, true, `expected ${Class.name}, got ${err.constructor.name}: ${err.message}`);
  assert.equal(err.status, status);
  assert.equal(err.message, `${status} ${message}`);
  assert.equal(err.code, code);
  assert.equal(err.type, type);
  assert.equal(err.param, undefined);
  const rid = err.headers['x-request-id'];
  assert.match(rid, /^[0-9a-f]{32}$/);
  assert.equal(err.request_id, rid);
  assert.deepEqual(err.error, { type, code, message, request_id: rid });
}

test('an unknown model is the SDK\'s NotFoundError', async () => {
  const err = await thrown(() => client.chat.completions.create({ model: 'gpt-9', messages: user('hi') }));
  gatewayError(err, OpenAI.NotFoundError, 404, 'model_not_found', 'not_found_error', 'the model "gpt-9" does not exist');
});

test('an unknown model in a streamed request fails before the stream starts', async () => {
  const err = await thrown(() => client.chat.completions.create({ model: 'nope', messages: user('hi'), stream: true }));
  gatewayError(err, OpenAI.NotFoundError, 404, 'model_not_found', 'not_found_error', 'the model "nope" does not exist');
});

test('an unknown model for embeddings is the SDK\'s NotFoundError', async () => {
  const err = await thrown(() => client.embeddings.create({ model: 'nope', input: 'x', encoding_format: 'float' }));
  gatewayError(err, OpenAI.NotFoundError, 404, 'model_not_found', 'not_found_error', 'the model "nope" does not exist');
});

test('an endpoint the gateway does not serve is the SDK\'s NotFoundError', async () => {
  const err = await thrown(() => client.completions.create({ model: 'demo', prompt: 'hi' }));
  gatewayError(err, OpenAI.NotFoundError, 404, 'unknown_url', 'not_found_error', 'Invalid URL (POST /v1/completions)');
  const err2 = await thrown(() => client.models.retrieve('demo'));
  gatewayError(err2, OpenAI.NotFoundError, 404, 'unknown_url', 'not_found_error', 'Invalid URL (GET /v1/models/demo)');
});

test('bad request bodies are the SDK\'s BadRequestError', async () => {
  const err = await thrown(() => client.chat.completions.create({ model: 'demo', messages: 'hi' }));
  gatewayError(err, OpenAI.BadRequestError, 400, 'invalid_request', 'invalid_request_error', 'messages must be an array');
  const err2 = await thrown(() => client.chat.completions.create({ messages: user('hi') }));
  gatewayError(err2, OpenAI.BadRequestError, 400, 'missing_model', 'invalid_request_error',
    'you must provide a model parameter (a string)');
  const err3 = await thrown(() => client.embeddings.create({ model: 'embed', encoding_format: 'float' }));
  gatewayError(err3, OpenAI.BadRequestError, 400, 'invalid_request', 'invalid_request_error', 'input is required');
});

const RATE_LIMITED = {
  message: 'Rate limit reached for requests. Please try again later.',
  type: 'requests',
  param: null,
  code: 'rate_limit_exceeded',
};

function rateLimited(err) {
  assert.equal(err instanceof OpenAI.RateLimitError, true, `expected RateLimitError, got ${err.constructor.name}`);
  assert.equal(err.status, 429);
  assert.equal(err.message, `429 ${RATE_LIMITED.message}`);
  assert.equal(err.code, 'rate_limit_exceeded');
  assert.equal(err.type, 'requests');
  assert.equal(err.param, null);
  assert.deepEqual(err.error, RATE_LIMITED);
  assert.equal(err.headers['x-sluice-provider'], 'openai');
  assert.equal(err.headers['x-sluice-model'], 'gpt-4o');
  assert.match(err.request_id, /^[0-9a-f]{32}$/);
}

test('a provider\'s 429 with no target to fail over to is the SDK\'s RateLimitError', async () => {
  rateLimited(await thrown(() => client.chat.completions.create({ model: 'limited', messages: user('hi') })));
});

test('a provider\'s 429 on a streamed request is the SDK\'s RateLimitError', async () => {
  rateLimited(await thrown(() => client.chat.completions.create({ model: 'limited', messages: user('hi'), stream: true })));
});

test('a provider stream cut after content ends in an error the SDK raises', async () => {
  // The driver scripted the "flaky" provider to drop the connection after two
  // words: the gateway has sent them already, so it ends the stream with an
  // error chunk, which the SDK turns into an APIError mid-iteration.
  const stream = await client.chat.completions.create({ model: 'flaky', messages: user('hi you'), stream: true });
  const seen = [];
  const err = await thrown(async () => {
    for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content);
  });
  assert.deepEqual(seen, ['', 'mock', ' reply']);
  assert.equal(err.constructor, OpenAI.APIError, `got ${err.constructor.name}`);
  assert.equal(err.status, undefined);
  assert.equal(err.message, 'the provider\'s stream ended early (connection closed)');
  assert.deepEqual(err.error, {
    message: 'the provider\'s stream ended early (connection closed)', type: 'server_error', param: null, code: null,
  });
});

test('the SDK reads the whole stream of a healthy provider after the failed one', async () => {
  // The flaky provider has no script left: the same alias streams cleanly.
  const chunks = await collect(await client.chat.completions.create({ model: 'flaky', messages: user('hi you'), stream: true }));
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), 'mock reply to: hi you');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});
