// The official OpenAI and Anthropic Node SDKs against the gateway (run by tests/sdk/test_node_sdk.py,
// which starts the gateway with the samples, a fake upstream and the routes it names): every call
// a Node client makes, on the samples' mock and on the fake's OpenAI and Anthropic routes. Prints
// one JSON object of what it saw; any SDK error fails the run.
//
//   GATEWAY_URL=http://127.0.0.1:PORT GATEWAY_KEY=sk-... node clients.mjs

import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const baseURL = process.env.GATEWAY_URL;
const apiKey = process.env.GATEWAY_KEY;
const openai = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0, timeout: 30_000 });
const anthropic = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
const seen = {};

// Chat and the Responses API on every backend type.
for (const model of ["demo-echo", "local-model", "fake-claude"]) {
  const chat = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "hello node" }] });
  const response = await openai.responses.create({ model, instructions: "Be brief.", input: "hello node" });
  const next = await openai.responses.create({ model, input: "again", previous_response_id: response.id });
  let streamed = "";
  const kinds = [];
  const stream = await openai.responses.create({ model, input: "hello node", stream: true });
  for await (const event of stream) {
    kinds.push(event.type);
    if (event.type === "response.output_text.delta") streamed += event.delta;
  }
  const message = await anthropic.messages.create({ model, max_tokens: 64, messages: [{ role: "user", content: "hello node" }] });
  const counted = await anthropic.messages.countTokens({ model, messages: [{ role: "user", content: "hello node" }] });
  seen[model] = {
    chat: chat.choices[0].message.content,
    response: response.output_text,
    responseUsage: response.usage,
    continued: next.output_text,
    continuedFrom: next.previous_response_id,
    streamed,
    firstEvent: kinds[0],
    lastEvent: kinds.at(-1),
    retrieved: (await openai.responses.retrieve(response.id)).output_text,
    message: message.content[0].text,
    counted: counted.input_tokens,
    messageInput: message.usage.input_tokens,
  };
}

// Structured output on an Anthropic route, as JSON text the client parses.
const schema = { type: "object", properties: { sky: { type: "string" } }, required: ["sky"], additionalProperties: false };
const structured = await openai.chat.completions.create({
  model: "fake-claude",
  messages: [{ role: "user", content: "Describe the sky." }],
  response_format: { type: "json_schema", json_schema: { name: "sky", schema, strict: true } },
});
seen.structured = JSON.parse(structured.choices[0].message.content);

// Embeddings (the SDK asks for base64 and decodes), legacy completions, model lookup both ways.
const embedded = await openai.embeddings.create({ model: "demo-embed", input: ["peanut allergy", "where I live"], dimensions: 8 });
seen.embeddings = embedded.data.map((item) => item.embedding.length);
seen.embeddingTokens = embedded.usage.prompt_tokens;
const completion = await openai.completions.create({ model: "local-model", prompt: "Once upon a time", max_tokens: 16 });
seen.completion = completion.choices[0].text;
seen.openaiModel = (await openai.models.retrieve("demo-echo")).id;
seen.anthropicModel = (await anthropic.models.retrieve("demo-echo")).type;

console.log(JSON.stringify(seen));
