// The openai SDK against sluice's ai-proxy: models.list() and embeddings,
// from the built-in mock provider ("embed") and an OpenAI provider relayed
// ("gpt-embed").

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import OpenAI from 'openai';

import { collect, need, transport } from './env.mjs';

const client = new OpenAI({ baseURL: `${need('SLUICE_URL')}/v1`, apiKey: 'any-key', maxRetries: 0, ...transport });

// The aliases the driver configured, in config order.
const ALIASES = ['demo', 'gpt', 'claude', 'limited', 'flaky', 'embed', 'gpt-embed'];

// Both mocks give byte i of a hash of the text as (b - 128) / 128, multiples
// of 1/128 that float32 (the SDK's base64 form) holds exactly. The built-in
// mock hashes with SHA-256, spec/helpers/mock_llm.py with SHAKE-256.
const bytesToVector = (bytes) => [...bytes].map((b) => (b - 128) / 128);
const builtinVector = (text, dims = 8) => bytesToVector(createHash('sha256').update(text).digest().subarray(0, dims));
const mockLlmVector = (text, dims = 8) => bytesToVector(createHash('shake256', { outputLength: dims }).update(text).digest());

function embeddings(model, vectors, tokens) {
  return {
    object: 'list',
    model,
    data: vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

test('models.list() gives the aliases', async () => {
  const page = await client.models.list();
  const expected = ALIASES.map((id) => ({ id, object: 'model', created: 0, owned_by: 'sluice' }));
  assert.deepEqual(page.data, expected);
  assert.equal(page.hasNextPage(), false);
  assert.deepEqual(await collect(client.models.list()), expected);
});

test('embeddings from the built-in mock provider, as floats', async () => {
  const { data, response } = await client.embeddings
    .create({ model: 'embed', input: ['hello world', 'x'], encoding_format: 'float' })
    .withResponse();
  assert.equal(response.headers.get('x-sluice-provider'), 'mock');
  assert.equal(response.headers.get('x-sluice-model'), 'mock-embed');
  assert.deepEqual(data, embeddings('mock-embed', [builtinVector('hello world'), builtinVector('x')], 3));
  const short = await client.embeddings.create({ model: 'embed', input: 'abc', dimensions: 3, encoding_format: 'float' });
  assert.deepEqual(short.data[0].embedding, builtinVector('abc', 3));
});

// The SDK asks for base64 when the caller names no encoding_format and
// decodes the answer itself, so the built-in mock must honour
// encoding_format: "base64".
test('embeddings from the built-in mock provider, as the SDK asks by default', async () => {
    const data = await client.embeddings.create({ model: 'embed', input: ['hello world', 'x'] });
    assert.deepEqual(data, embeddings('mock-embed', [builtinVector('hello world'), builtinVector('x')], 3));
  });

test('embeddings relayed from an OpenAI provider, as the SDK asks by default (base64)', async () => {
  const { data, response } = await client.embeddings
    .create({ model: 'gpt-embed', input: ['one two', 'three'] })
    .withResponse();
  assert.equal(response.headers.get('x-sluice-provider'), 'openai');
  assert.equal(response.headers.get('x-sluice-model'), 'text-embedding-3-small');
  assert.deepEqual(data, embeddings('text-embedding-3-small', [mockLlmVector('one two'), mockLlmVector('three')], 3));
});

test('embeddings relayed from an OpenAI provider, as floats with dimensions', async () => {
  const data = await client.embeddings.create({
    model: 'gpt-embed', input: 'one two three', dimensions: 4, encoding_format: 'float',
  });
  assert.deepEqual(data, embeddings('text-embedding-3-small', [mockLlmVector('one two three', 4)], 3));
});
