// node --test: checks of tools/fixtures/derive_gemma4_tokenizer.mjs on Google's Gemma 3 file
// (run by tests/tokenizer/node_tests_test.cpp so that CI runs them through ctest).
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { derive, kDefaultInput, kRenames } from "../../../tools/fixtures/derive_gemma4_tokenizer.mjs";

const gemma3 = () => JSON.parse(fs.readFileSync(kDefaultInput, "utf8"));

test("every renamed id holds its Gemma 4 string in vocab and added_tokens, marked special", () => {
  const tok = derive(gemma3(), "gemma3");
  const byId = new Map(tok.added_tokens.map((t) => [t.id, t]));
  for (const [id, , name] of kRenames) {
    assert.equal(tok.model.vocab[name], id, name);
    assert.equal(byId.get(id).content, name);
    assert.equal(byId.get(id).special, true);
  }
  assert.equal(Object.keys(tok.model.vocab).length, 262144);
  assert.equal(new Set(Object.values(tok.model.vocab)).size, 262144);
  for (const t of tok.added_tokens) assert.equal(tok.model.vocab[t.content], t.id, t.content);
  assert.equal(tok.model.vocab["<start_of_turn>"], undefined);
  assert.ok(!tok.added_tokens.some((t) => t.content === "<image_soft_token>"));
  assert.equal(tok.model.merges.length, gemma3().model.merges.length);
});

test("an input whose control ids moved is rejected with the id named", () => {
  const tok = gemma3();
  const id105 = Object.entries(tok.model.vocab).find(([, v]) => v === 105)[0];
  delete tok.model.vocab[id105];
  tok.model.vocab["<something_else>"] = 105;
  assert.throws(() => derive(tok, "moved.json"), /moved\.json: model\.vocab id 105 is "<something_else>", expected "<start_of_turn>"/);
});

test("an input already holding a Gemma 4 name elsewhere is rejected", () => {
  const tok = gemma3();
  const [name] = Object.entries(tok.model.vocab).find(([, v]) => v === 1000);
  delete tok.model.vocab[name];
  tok.model.vocab["<|turn>"] = 1000;
  assert.throws(() => derive(tok, "dup.json"), /"<\|turn>" already in model\.vocab/);
});
