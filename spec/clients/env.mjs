// What every client test needs from the pytest driver
// (spec/integration/test_sdk_clients.py): where the servers listen, and the
// values both sides must agree on.

import http from 'node:http';

export function need(name) {
  const value = process.env[name];
  if (!value) {
    // A missing URL would make every SDK call fail with a connection error
    // that hides the real cause.
    throw new Error(`${name} is not set: run these tests through spec/integration/test_sdk_clients.py`);
  }
  return value;
}

// Options every SDK client gets. On Node these SDK versions read responses
// with node-fetch 2, whose check for a cut chunked body misfires on a reused
// keep-alive socket (node-fetch issue #1767): on Debian 12's nodejs 18 every
// streamed answer then fails with "Premature close", whatever the server
// sends. Fresh connections keep the SDK's own transport and avoid that.
export const transport = { httpAgent: new http.Agent({ keepAlive: false }) };

// The mock providers' fixed `created` (mock_llm.CREATED).
export const CREATED = 1700000000;

// The same tool in both wire formats; the mocks call the first tool when the
// last user message contains "call tool".
export const OPENAI_TOOLS = [{
  type: 'function',
  function: {
    name: 'lookup',
    description: 'find things',
    parameters: { type: 'object', properties: { q: { type: 'string' } } },
  },
}];
export const ANTHROPIC_TOOLS = [{
  name: 'lookup',
  description: 'find things',
  input_schema: { type: 'object', properties: { q: { type: 'string' } } },
}];

export async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

// Runs fn, which must throw; returns what it threw so the test can check
// every field (assert.rejects would stop at the class).
export async function thrown(fn) {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail, it succeeded');
}
