// tests/node/server/openai_sdk.test.mjs: the official OpenAI Node SDK against `quench serve`.
//
// Run by tests/server/node_sdk_test.cpp, which starts the server on 127.0.0.1 and sets
// QUENCH_SERVER_URL (e.g. http://127.0.0.1:PORT/v1), QUENCH_API_KEY and QUENCH_MODEL.
// Assertions are about the API contract (shapes, counts, determinism, error classes), so they hold
// for any model behind the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.QUENCH_SERVER_URL;
const apiKey = process.env.QUENCH_API_KEY ?? 'unused';
const model = process.env.QUENCH_MODEL;
if (!baseURL || !model) throw new Error('QUENCH_SERVER_URL and QUENCH_MODEL must be set');

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const messages = [{ role: 'user', content: 'What is 23 + 45?' }];

test('models lists the served model', async () => {
  const page = await client.models.list();
  assert.ok(page.data.some((m) => m.id === model));
});

test('chat completion with usage', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('completion with max_tokens gives finish_reason length', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, temperature: 0, ignore_eos: true });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 5);
});

test('streaming chat equals non-streaming and reports usage', async () => {
  const body = { model, messages, max_tokens: 12, temperature: 0, ignore_eos: true };
  const whole = await client.chat.completions.create(body);
  const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let first = true;
  let finish = null;
  let usage = null;
  let ids = new Set();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (first) {
        assert.equal(c.delta.role, 'assistant');
        first = false;
      }
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(ids.size, 1);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 12);
  assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
});

test('streaming completion', async () => {
  const body = { model, prompt: 'The sky is', max_tokens: 6, temperature: 0, ignore_eos: true };
  const whole = await client.completions.create(body);
  const stream = await client.completions.create({ ...body, stream: true });
  let text = '';
  for await (const chunk of stream) for (const c of chunk.choices) text += c.text;
  assert.equal(text, whole.choices[0].text);
});

test('stop string ends the text before it and is not emitted', async () => {
  const body = { model, prompt: 'Count:', max_tokens: 16, temperature: 0, ignore_eos: true };
  const full = (await client.completions.create(body)).choices[0].text;
  assert.ok(full.length >= 4, `output too short to cut: ${JSON.stringify(full)}`);
  const stop = full.slice(2, 4);
  const cut = await client.completions.create({ ...body, stop: [stop] });
  assert.equal(cut.choices[0].text, full.slice(0, full.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
});

test('same seed gives the same sampled output', async () => {
  const body = { model, messages, max_tokens: 10, temperature: 1.0, seed: 42, ignore_eos: true };
  const a = await client.chat.completions.create(body);
  const b = await client.chat.completions.create(body);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('logprobs and top_logprobs', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2, ignore_eos: true });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 3);
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 2);
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
  }
});

test('n > 1 returns n choices', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0.8, n: 3, seed: 1, ignore_eos: true });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(r.usage.completion_tokens, 12);
});

test('errors map to SDK error classes', async () => {
  await assert.rejects(client.chat.completions.create({ model, messages, top_p: 0 }), (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(client.chat.completions.create({ model, messages: [] }), OpenAI.BadRequestError);
  await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 10_000_000 }), (e) => e instanceof OpenAI.BadRequestError && /maximum context length/.test(e.message));
  const wrongKey = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
  if (process.env.QUENCH_API_KEY) await assert.rejects(wrongKey.models.list(), OpenAI.AuthenticationError);
});
