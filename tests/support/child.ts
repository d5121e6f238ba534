// Test support for child scripts that a test runs on Bun or Deno with `runForJson` (process.ts):
// their arguments and the JSON the test wrote to their stdin. Runtime-neutral (no Bun-only API),
// since the same script runs under both.

const deno = (globalThis as { Deno?: { args: string[]; stdin: { readable: AsyncIterable<Uint8Array> } } }).Deno;

/** The runtime this script runs on. */
export const childRuntime: "deno" | "bun" = deno ? "deno" : "bun";

/** The script's arguments, and the JSON document read from stdin until it closes. */
export async function childInput<T>(): Promise<{ args: string[]; input: T }> {
  const args = deno ? deno.args : process.argv.slice(2);
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of (deno ? deno.stdin.readable : process.stdin) as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
  }
  return { args, input: JSON.parse(text + decoder.decode()) as T };
}
