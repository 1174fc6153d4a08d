// The TypeScript MCP SDK's client against flow8's MCP server, as an agent would use it:
//   node client.mjs <url> <bearer token> [tool] [arguments as JSON]
// Connects over Streamable HTTP with the token as a bearer header, lists the tools, calls one
// (by default the first non-built-in tool) and prints one JSON line:
//   {"tools": [...names], "called": name, "isError": bool, "structured": ..., "text": ...}
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, wanted, rawArgs] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node client.mjs <url> <token> [tool] [arguments-json]");
  process.exit(2);
}
const BUILT_IN = new Set([
  "list_flows", "get_flow", "run_flow", "get_play", "list_plays", "list_modules",
  "approve_play", "reject_play",
]);

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "flow8-ts-check", version: "1.0.0" });
try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  const name = wanted || names.find((n) => !BUILT_IN.has(n));
  if (!name) throw new Error(`no flow tool among ${names.join(", ")}`);
  const result = await client.callTool({ name, arguments: rawArgs ? JSON.parse(rawArgs) : {} });
  const text = (result.content || []).filter((c) => c.type === "text").map((c) => c.text).join("");
  console.log(JSON.stringify({
    tools: names,
    called: name,
    isError: Boolean(result.isError),
    structured: result.structuredContent ?? null,
    text,
  }));
} finally {
  await client.close();
}
