/**
 * NATS-style name patterns for access rules and rate limits: names are dot-separated tokens,
 * `*` stands for exactly one token and `>` (last token only) for one or more trailing tokens.
 *
 * @example
 * ```ts
 * import { namePattern } from "@echostream/core/security";
 *
 * const m = namePattern(["telemetry.d42.>", "cmd.*"]);
 * console.log(m("telemetry.d42.temp.c"), m("cmd.reboot"), m("cmd.a.b")); // true true false
 * ```
 *
 * @module
 */

/**
 * Why `pattern` is not a valid name pattern, or undefined when it is. Rules: a non-empty string
 * of non-empty dot-separated tokens; `*` and `>` only as whole tokens; `>` only last.
 */
export function patternProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== "string") return `a pattern must be a string, received ${pattern === null ? "null" : typeof pattern}`;
  if (pattern.length === 0) return "a pattern must not be empty";
  const tokens = pattern.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.length === 0) return `pattern "${pattern}" has an empty token (leading, trailing or doubled dot)`;
    if (t === ">" && i !== tokens.length - 1) return `pattern "${pattern}": ">" may only be the last token`;
    if (t !== "*" && t !== ">" && (t.includes("*") || t.includes(">"))) {
      return `pattern "${pattern}": "*" and ">" must be whole tokens (found "${t}")`;
    }
  }
  return undefined;
}

/** One compiled pattern: the tokens, with `*`/`>` kept as markers. */
type Compiled = { exact: string } | { tokens: readonly string[]; tail: boolean };

function compile(p: string): Compiled {
  if (!p.includes("*") && !p.includes(">")) return { exact: p };
  const tokens = p.split(".");
  const tail = tokens[tokens.length - 1] === ">";
  return { tokens: tail ? tokens.slice(0, -1) : tokens, tail };
}

function matches(c: Compiled, name: string, parts: readonly string[]): boolean {
  if ("exact" in c) return c.exact === name;
  const n = c.tokens.length;
  if (c.tail ? parts.length <= n : parts.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const t = c.tokens[i];
    if (parts[i].length === 0) return false; // "a..b" has an empty token no wildcard stands for
    if (t !== "*" && t !== parts[i]) return false;
  }
  if (c.tail) for (let i = n; i < parts.length; i++) if (parts[i].length === 0) return false;
  return true;
}

/**
 * Compiles patterns into one matcher: true when any pattern matches `name`.
 *
 * @param patterns NATS-style patterns (see {@link patternProblem}).
 * @param what Where the patterns come from, for the error message.
 * @throws {TypeError} For a pattern that is not valid: never a silent allow or deny.
 */
export function namePattern(patterns: readonly string[], what = "patterns"): (name: string) => boolean {
  if (!Array.isArray(patterns)) throw new TypeError(`${what} must be an array of name patterns`);
  const exact = new Set<string>();
  const wild: Compiled[] = [];
  for (const p of patterns) {
    const problem = patternProblem(p);
    if (problem) throw new TypeError(`${what}: ${problem}`);
    const c = compile(p);
    if ("exact" in c) exact.add(c.exact);
    else wild.push(c);
  }
  if (wild.length === 0) return (name) => exact.has(name);
  return (name) => {
    if (exact.has(name)) return true;
    const parts = name.split(".");
    for (const c of wild) if (matches(c, name, parts)) return true;
    return false;
  };
}
