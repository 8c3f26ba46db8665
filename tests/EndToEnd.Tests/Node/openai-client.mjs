// A chat completion through the official OpenAI client for Node.js (npm package "openai"), as any Node.js
// application would make one, against the base URL given. Prints one JSON object with what the client saw.
//
//   node openai-client.mjs <folder with node_modules/openai> <base URL ending in /v1> <model> plain|streamed <prompt>
//
// The package is installed outside the repository (the test fixture keeps it in a cache folder), so it is
// loaded from the folder given rather than from beside this script.
import { createRequire } from "node:module";
import { join } from "node:path";

const [modulesFolder, baseURL, model, mode, prompt] = process.argv.slice(2);
if (!prompt || !["plain", "streamed"].includes(mode)) {
  console.error("usage: node openai-client.mjs <modules folder> <base URL> <model> plain|streamed <prompt>");
  process.exit(2);
}

const { OpenAI } = createRequire(join(modulesFolder, "package.json"))("openai");
// A keyless host ignores the key; retries off so that a failure shows as it happened.
const client = new OpenAI({ baseURL, apiKey: "sk-node-client", maxRetries: 0, timeout: 30_000 });
const messages = [
  { role: "system", content: "You route customer e-mail." },
  { role: "user", content: prompt },
];
const gatewayHeaders = (response) =>
  Object.fromEntries(["x-pa-provider", "x-pa-simulated", "x-pa-cache-hit", "x-pa-cost-usd"].map((name) => [name, response.headers.get(name)]));

if (mode === "plain") {
  const { data, response } = await client.chat.completions.create({ model, messages }).withResponse();
  console.log(JSON.stringify({
    id: data.id,
    object: data.object,
    model: data.model,
    role: data.choices[0].message.role,
    content: data.choices[0].message.content,
    finishReason: data.choices[0].finish_reason,
    usage: data.usage,
    headers: gatewayHeaders(response),
  }));
} else {
  const { data: stream, response } = await client.chat.completions
    .create({ model, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
  }

  const choices = chunks.flatMap((chunk) => chunk.choices);
  console.log(JSON.stringify({
    chunks: chunks.length,
    objects: [...new Set(chunks.map((chunk) => chunk.object))],
    ids: [...new Set(chunks.map((chunk) => chunk.id))],
    model: chunks[0]?.model,
    role: choices.find((choice) => choice.delta?.role)?.delta.role,
    content: choices.map((choice) => choice.delta?.content ?? "").join(""),
    finishReasons: choices.map((choice) => choice.finish_reason).filter((reason) => reason),
    // With include_usage the last chunk carries the usage and no choices.
    lastChunkChoices: chunks.at(-1)?.choices.length,
    usage: chunks.at(-1)?.usage ?? null,
    headers: gatewayHeaders(response),
  }));
}
