// Access control: table-driven decisions (like grpc-go's authz end-to-end tables), per-peer rules,
// hooks and their failures, the bounded cache, and every validation error with its path.

import { describe, expect, test } from "bun:test";
import {
  type Access,
  type AccessKind,
  type AccessPolicy,
  compileAccess,
  type Permissions,
  validateAccessPolicy,
  type Who,
} from "../../src/security/access.ts";

const who = (principal: unknown = undefined, peerName = "peer"): Who => ({
  principal,
  remote: { host: "192.0.2.7", port: 50123 },
  certificate: undefined,
  peerName,
});

type Expectation = readonly [AccessKind, string, boolean];

interface Case {
  name: string;
  policy: AccessPolicy;
  principal?: unknown;
  expect: readonly Expectation[];
}

const cases: Case[] = [
  {
    name: "no rules: everything allowed",
    policy: {},
    expect: [["request", "a", true], ["event", "a.b.c", true], ["stream", "x", true]],
  },
  {
    name: "allow-only list (array form): everything else of that kind denied, other kinds untouched",
    policy: { permissions: { request: ["math.*", "echo"] } },
    expect: [
      ["request", "math.add", true],
      ["request", "math.add.int", false],
      ["request", "math", false],
      ["request", "echo", true],
      ["request", "echo.x", false],
      ["request", "other", false],
      ["event", "other", true],
      ["stream", "other", true],
    ],
  },
  {
    name: "allow-only list (object form)",
    policy: { permissions: { event: { allow: ["chat.>"] } } },
    expect: [["event", "chat.room1", true], ["event", "chat.room1.msg", true], ["event", "chat", false], ["event", "news.x", false]],
  },
  {
    name: "allow: [] allows nothing of that kind, even without defaultDeny",
    policy: { permissions: { stream: { allow: [] } } },
    expect: [["stream", "a", false], ["stream", "a.b", false], ["request", "a", true]],
  },
  {
    name: "deny wins over allow (A43: admin allowed > but admin.secret denied)",
    policy: { permissions: { request: { allow: [">"], deny: ["admin.secret"] } } },
    expect: [
      ["request", "admin.secret", false],
      ["request", "admin.users", true],
      ["request", "admin.secret.x", true],
      ["request", "anything.at.all", true],
    ],
  },
  {
    name: "deny wins: wildcard deny inside a wildcard allow",
    policy: { permissions: { request: { allow: ["admin.>"], deny: ["admin.*.delete"] } } },
    expect: [
      ["request", "admin.users.delete", false],
      ["request", "admin.users.list", true],
      ["request", "admin.delete", true],
      ["request", "admin.users.delete.x", true],
      ["request", "public.x", false],
    ],
  },
  {
    name: "deny-only list: the rest of that kind stays allowed (defaultDeny off)",
    policy: { permissions: { event: { deny: ["internal.>"] } } },
    expect: [["event", "internal.x", false], ["event", "internal", true], ["event", "public.x", true]],
  },
  {
    name: "* is exactly one token",
    policy: { permissions: { request: ["a.*"] } },
    expect: [["request", "a", false], ["request", "a.b", true], ["request", "a.b.c", false], ["request", "b.a", false]],
  },
  {
    name: "> is one or more trailing tokens",
    policy: { permissions: { request: ["a.>"] } },
    expect: [["request", "a", false], ["request", "a.b", true], ["request", "a.b.c", true], ["request", "b.a", false]],
  },
  {
    name: "bare * and bare >",
    policy: { permissions: { request: ["*"], event: [">"] } },
    expect: [["request", "a", true], ["request", "a.b", false], ["event", "a", true], ["event", "a.b.c", true]],
  },
  {
    name: "* in the middle and empty tokens never matched",
    policy: { permissions: { request: ["a.*.c", "x.>"] } },
    expect: [["request", "a.b.c", true], ["request", "a..c", false], ["request", "a.b.d", false], ["request", "x..y", false], ["request", "", false]],
  },
  {
    name: "defaultDeny on: a kind left out is denied, a listed kind follows its list",
    policy: { permissions: { request: ["x"] }, defaultDeny: true },
    expect: [["request", "x", true], ["request", "y", false], ["event", "x", false], ["stream", "x", false]],
  },
  {
    name: "defaultDeny off (explicit): a kind left out is allowed",
    policy: { permissions: { request: ["x"] }, defaultDeny: false },
    expect: [["request", "y", false], ["event", "x", true], ["stream", "anything", true]],
  },
  {
    name: "defaultDeny on with a deny-only list: that kind has no allow list, so all denied",
    policy: { permissions: { event: { deny: ["a"] } }, defaultDeny: true },
    expect: [["event", "a", false], ["event", "b", false]],
  },
  {
    name: "defaultDeny on and no permissions: everything denied",
    policy: { defaultDeny: true },
    expect: [["request", "a", false], ["event", "a", false], ["stream", "a", false]],
  },
  {
    name: "per-peer allow is unioned with the static allow list",
    policy: { permissions: { request: ["public.*"] }, perPeer: ({ principal }) => (principal === "admin" ? { request: ["admin.>"] } : undefined) },
    principal: "admin",
    expect: [["request", "public.x", true], ["request", "admin.users.list", true], ["request", "other", false]],
  },
  {
    name: "per-peer rules for another principal add nothing",
    policy: { permissions: { request: ["public.*"] }, perPeer: ({ principal }) => (principal === "admin" ? { request: ["admin.>"] } : undefined) },
    principal: "guest",
    expect: [["request", "public.x", true], ["request", "admin.users.list", false]],
  },
  {
    name: "per-peer deny beats a static allow",
    policy: { permissions: { request: [">"] }, perPeer: () => ({ request: { deny: ["billing.>"] } }) },
    expect: [["request", "billing.charge", false], ["request", "math.add", true]],
  },
  {
    name: "static deny beats a per-peer allow",
    policy: { permissions: { request: { deny: ["admin.secret"] } }, perPeer: () => ({ request: [">"] }) },
    expect: [["request", "admin.secret", false], ["request", "admin.users", true]],
  },
  {
    name: "a per-peer allow list alone gives the kind an allow list",
    policy: { perPeer: () => ({ stream: ["audio.*"] }) },
    expect: [["stream", "audio.mic", true], ["stream", "video.cam", false], ["request", "x", true]],
  },
  {
    name: "a per-peer allow: [] gives the kind an allow list that allows nothing more",
    policy: { perPeer: () => ({ event: { allow: [] } }) },
    expect: [["event", "x", false], ["request", "x", true]],
  },
  {
    name: "per-peer with defaultDeny: only what the peer got",
    policy: { defaultDeny: true, perPeer: ({ principal }) => ({ event: [`telemetry.${principal}.>`] }) },
    principal: "d42",
    expect: [["event", "telemetry.d42.temp", true], ["event", "telemetry.d43.x", false], ["request", "x", false]],
  },
  {
    name: "check hook has the last word on what the patterns allowed",
    policy: { permissions: { request: ["math.*"] }, check: ({ name }) => name !== "math.div" },
    expect: [["request", "math.add", true], ["request", "math.div", false], ["request", "other", false]],
  },
  {
    name: "bare-function policy",
    policy: ({ kind, name }) => kind === "event" && name.startsWith("ok"),
    expect: [["event", "ok.1", true], ["event", "no", false], ["request", "ok.1", false]],
  },
];

describe("decision table", () => {
  for (const c of cases) {
    test(c.name, async () => {
      validateAccessPolicy(c.policy);
      const access = compileAccess(c.policy, who(c.principal));
      const got = await Promise.all(c.expect.map(([kind, name]) => access.decide(kind, name)));
      expect(c.expect.map(([kind, name], i) => [kind, name, got[i]])).toEqual(c.expect.map((e) => [...e]));
      // Decided again (from the cache): the same answers.
      const again = await Promise.all(c.expect.map(([kind, name]) => access.decide(kind, name)));
      expect(again).toEqual(got);
    });
  }
});

describe("synchronous decisions", () => {
  test("without a hook, decide returns plain booleans (not Promises)", () => {
    const access = compileAccess({ permissions: { request: { allow: [">"], deny: ["x"] } }, perPeer: () => ({ event: ["e"] }) }, who());
    const results = [access.decide("request", "a"), access.decide("request", "x"), access.decide("event", "e"), access.decide("event", "f")];
    expect(results).toEqual([true, false, true, false]);
    for (const r of results) expect(typeof r).toBe("boolean");
  });

  test("an unknown kind or a non-string name is denied, never a throw", () => {
    const policies: AccessPolicy[] = [{}, { check: () => true }, () => true];
    for (const p of policies) {
      const access = compileAccess(p, who());
      expect(access.decide("bogus" as AccessKind, "a")).toBe(false);
      expect(access.decide("request", 42 as unknown as string)).toBe(false);
      expect(access.decide("request", "a")).toBe(true);
    }
  });
});

describe("per-peer rules", () => {
  const device = (id: string): Who => ({ ...who({ device: id }), peerName: id });
  const iot = (calls: { n: number }): AccessPolicy => ({
    defaultDeny: true,
    permissions: { request: ["time.now"] },
    perPeer: ({ principal }) => {
      calls.n++;
      return { event: [`telemetry.${(principal as { device: string }).device}.>`] };
    },
  });

  test("IoT device d42 may emit telemetry.d42.> only", () => {
    const access = compileAccess(iot({ n: 0 }), device("d42"));
    expect(access.decide("event", "telemetry.d42.temp")).toBe(true);
    expect(access.decide("event", "telemetry.d42.temp.celsius")).toBe(true);
    expect(access.decide("event", "telemetry.d43.x")).toBe(false);
    expect(access.decide("event", "telemetry.d42")).toBe(false);
    expect(access.decide("request", "time.now")).toBe(true);
    expect(access.decide("stream", "telemetry.d42.x")).toBe(false);
  });

  test("perPeer runs once per connection, not per decision", () => {
    const calls = { n: 0 };
    const policy = iot(calls);
    const a = compileAccess(policy, device("d42"));
    let allowed = 0;
    for (let i = 0; i < 1000; i++) {
      if (a.decide("event", `telemetry.d42.${i % 7}`) === true) allowed++;
      if (a.decide("event", `telemetry.d43.${i}`) === true) allowed += 1000;
      a.decide("request", "time.now");
    }
    expect(allowed).toBe(1000);
    expect(calls.n).toBe(1);
    const b = compileAccess(policy, device("d43"));
    expect(calls.n).toBe(2);
    expect(b.decide("event", "telemetry.d43.x")).toBe(true);
    expect(b.decide("event", "telemetry.d42.x")).toBe(false);
    // The first connection kept its own rules.
    expect(a.decide("event", "telemetry.d43.x")).toBe(false);
    expect(calls.n).toBe(2);
  });

  test("perPeer gets the connection's Who", () => {
    const seen: Who[] = [];
    const w: Who = {
      principal: { user: "ada" },
      remote: { host: "::1", port: 1 },
      certificate: { subject: "CN=ada", fingerprint: "ab".repeat(32) },
      peerName: "ada-laptop",
    };
    compileAccess({ perPeer: (x) => (seen.push(x), undefined) }, w);
    expect(seen).toEqual([w]);
  });

  test("connections with and without per-peer rules do not leak decisions into each other", () => {
    const policy: AccessPolicy = {
      permissions: { request: ["public.*"] },
      perPeer: ({ principal }) => (principal === "vip" ? { request: ["extra.>"] } : undefined),
    };
    const plain1 = compileAccess(policy, who("guest"));
    expect(plain1.decide("request", "extra.x")).toBe(false);
    const vip = compileAccess(policy, who("vip"));
    expect(vip.decide("request", "extra.x")).toBe(true);
    const plain2 = compileAccess(policy, who("guest"));
    expect(plain2.decide("request", "extra.x")).toBe(false);
    expect(plain1.decide("request", "extra.x")).toBe(false);
    expect(vip.decide("request", "public.a")).toBe(true);
  });
});

describe("check hook", () => {
  const base = { permissions: { request: ["svc.*"] } } as const;

  test("true allows, false denies (synchronously)", () => {
    expect(compileAccess({ ...base, check: () => true }, who()).decide("request", "svc.a")).toBe(true);
    expect(compileAccess({ ...base, check: () => false }, who()).decide("request", "svc.a")).toBe(false);
  });

  test("a resolved true allows, a resolved false denies", async () => {
    const yes = compileAccess({ ...base, check: () => Promise.resolve(true) }, who()).decide("request", "svc.a");
    expect(yes).toBeInstanceOf(Promise);
    expect(await yes).toBe(true);
    expect(await compileAccess({ ...base, check: () => Promise.resolve(false) }, who()).decide("request", "svc.a")).toBe(false);
  });

  test("a non-boolean truthy value denies (only true allows)", async () => {
    for (const value of [1, "yes", {}, [], "true"]) {
      const access = compileAccess({ ...base, check: (() => value) as unknown as () => boolean }, who());
      expect(access.decide("request", "svc.a")).toBe(false);
      const asyncAccess = compileAccess({ ...base, check: (() => Promise.resolve(value)) as unknown as () => Promise<boolean> }, who());
      expect(await asyncAccess.decide("request", "svc.a")).toBe(false);
    }
  });

  test("a throwing hook denies and reports the error", () => {
    const errors: unknown[] = [];
    const boom = new Error("boom");
    const access = compileAccess({ ...base, check: () => {
      throw boom;
    } }, who(), (e) => errors.push(e));
    expect(access.decide("request", "svc.a")).toBe(false);
    expect(errors).toEqual([boom]);
  });

  test("a rejecting hook denies and reports the error", async () => {
    const errors: unknown[] = [];
    const boom = new Error("rejected");
    const access = compileAccess({ ...base, check: () => Promise.reject(boom) }, who(), (e) => errors.push(e));
    expect(await access.decide("request", "svc.a")).toBe(false);
    expect(errors).toEqual([boom]);
  });

  test("a thenable whose then throws denies and reports", async () => {
    const errors: unknown[] = [];
    const thenable = { then: () => {
      throw new Error("bad then");
    } };
    const access = compileAccess({ ...base, check: (() => thenable) as unknown as () => Promise<boolean> }, who(), (e) => errors.push(e));
    expect(await access.decide("request", "svc.a")).toBe(false);
    expect(errors.map((e) => (e as Error).message)).toEqual(["bad then"]);
  });

  test("a throwing onHookError does not make decide throw", async () => {
    const reporter = () => {
      throw new Error("reporter broke");
    };
    const sync = compileAccess({ ...base, check: () => {
      throw new Error("x");
    } }, who(), reporter);
    expect(sync.decide("request", "svc.a")).toBe(false);
    const async = compileAccess({ ...base, check: () => Promise.reject(new Error("x")) }, who(), reporter);
    expect(await async.decide("request", "svc.a")).toBe(false);
  });

  test("runs only for what the patterns allowed, and every time (not cached)", () => {
    const names: string[] = [];
    const policy: AccessPolicy = { permissions: { request: { allow: ["svc.*"], deny: ["svc.secret"] } }, check: ({ name }) => (names.push(name), true) };
    const access = compileAccess(policy, who());
    expect(access.decide("request", "svc.a")).toBe(true);
    expect(access.decide("request", "svc.a")).toBe(true);
    expect(access.decide("request", "svc.a")).toBe(true);
    expect(access.decide("request", "svc.secret")).toBe(false);
    expect(access.decide("request", "other")).toBe(false);
    expect(names).toEqual(["svc.a", "svc.a", "svc.a"]);
  });

  test("the answer can change between calls (no caching of the hook)", () => {
    let open = true;
    const access = compileAccess({ check: () => open }, who());
    expect(access.decide("stream", "s")).toBe(true);
    open = false;
    expect(access.decide("stream", "s")).toBe(false);
  });

  test("receives the full Access", () => {
    const seen: Access[] = [];
    const w: Who = {
      principal: { user: "ada" },
      remote: { host: "10.1.2.3", port: 9 },
      certificate: { subject: "CN=ada", fingerprint: "cd".repeat(32) },
      peerName: "ada",
    };
    compileAccess({ check: (a) => (seen.push(a), true) }, w).decide("event", "chat.room");
    expect(seen).toEqual([{ ...w, kind: "event", name: "chat.room" }]);
  });
});

describe("bare-function policy", () => {
  test("gets the right Access fields for each kind", () => {
    const seen: Access[] = [];
    const remote = { host: "127.0.0.1", port: 4433 };
    const certificate = { subject: "CN=x", fingerprint: "ef".repeat(32) };
    const w: Who = { principal: "p1", remote, certificate, peerName: "client-1" };
    const access = compileAccess((a) => (seen.push(a), a.name !== "no"), w);
    expect(access.decide("request", "m.add")).toBe(true);
    expect(access.decide("event", "no")).toBe(false);
    expect(access.decide("stream", "audio")).toBe(true);
    expect(seen).toEqual([
      { principal: "p1", kind: "request", name: "m.add", remote: { host: "127.0.0.1", port: 4433 }, certificate, peerName: "client-1" },
      { principal: "p1", kind: "event", name: "no", remote: { host: "127.0.0.1", port: 4433 }, certificate, peerName: "client-1" },
      { principal: "p1", kind: "stream", name: "audio", remote: { host: "127.0.0.1", port: 4433 }, certificate, peerName: "client-1" },
    ]);
  });

  test("is called for every decision (no caching)", () => {
    let n = 0;
    const access = compileAccess(() => (n++, true), who());
    for (let i = 0; i < 5; i++) access.decide("request", "same");
    expect(n).toBe(5);
  });

  test("throws, rejects and non-boolean values deny; errors are reported", async () => {
    const errors: unknown[] = [];
    const report = (e: unknown) => errors.push(e);
    const e1 = new Error("sync");
    const e2 = new Error("async");
    expect(compileAccess(() => {
      throw e1;
    }, who(), report).decide("request", "a")).toBe(false);
    expect(await compileAccess(() => Promise.reject(e2), who(), report).decide("request", "a")).toBe(false);
    expect(compileAccess((() => "yes") as unknown as () => boolean, who(), report).decide("request", "a")).toBe(false);
    expect(await compileAccess(() => Promise.resolve(true), who(), report).decide("request", "a")).toBe(true);
    expect(errors).toEqual([e1, e2]);
  });
});

describe("bounded cache", () => {
  const policies: [string, AccessPolicy][] = [
    ["static rules (shared cache)", { permissions: { request: { allow: ["ok.>"], deny: ["ok.bad.*"] }, event: ["ev.*"] } }],
    ["per-peer rules (own cache)", { permissions: { request: { deny: ["ok.bad.*"] } }, perPeer: () => ({ request: ["ok.>"], event: ["ev.*"] }) }],
  ];
  for (const [label, policy] of policies) {
    test(`10,000 distinct names stay correct: ${label}`, () => {
      const access = compileAccess(policy, who());
      const check = (i: number): number => {
        let wrong = 0;
        if (access.decide("request", `ok.${i}`) !== true) wrong++;
        if (access.decide("request", `no.${i}`) !== false) wrong++;
        if (access.decide("request", `ok.bad.${i}`) !== false) wrong++;
        if (access.decide("event", `ev.${i}`) !== true) wrong++;
        if (access.decide("event", `ev.${i}.x`) !== false) wrong++;
        if (access.decide("stream", `s.${i}`) !== true) wrong++;
        // The same name under each kind: one cache per kind, no crosstalk.
        if (access.decide("stream", `ev.${i}`) !== true) wrong++;
        if (access.decide("request", `ev.${i}`) !== false) wrong++;
        return wrong;
      };
      let wrong = 0;
      for (let i = 0; i < 10_000; i++) wrong += check(i);
      expect(wrong).toBe(0);
      // Early names (evicted long ago), late names (probably cached) and new ones.
      for (const i of [0, 1, 2, 4095, 4096, 9998, 9999, 10_000, 123_456]) wrong += check(i);
      expect(wrong).toBe(0);
    });
  }

  test("long names are decided correctly (not cached)", () => {
    const access = compileAccess({ permissions: { request: { allow: ["long.>"], deny: ["long.bad.>"] } } }, who());
    const long = "long." + "x".repeat(2000);
    expect(access.decide("request", long)).toBe(true);
    expect(access.decide("request", long)).toBe(true);
    expect(access.decide("request", "long.bad." + "y".repeat(2000))).toBe(false);
    expect(access.decide("request", "other." + "y".repeat(2000))).toBe(false);
  });
});

describe("validation", () => {
  const invalid: [string, unknown, string[]][] = [
    ["a string policy", "allow all", ["accessControl: must be an access hook (a function) or an object of access rules", 'the string "allow all"']],
    ["null policy", null, ["accessControl: must be", "received null"]],
    ["an array policy", ["a.>"], ["accessControl: must be", "received an array"]],
    ["a number policy", 42, ["accessControl: must be", "received number"]],
    ["a class instance policy", new Date(0), ["accessControl: must be", "received a Date"]],
    [
      "unknown top-level key deny",
      { deny: ["a"] },
      ["accessControl.deny: unknown key", "permissions, perPeer, defaultDeny or check", "name rules go under permissions"],
    ],
    ["unknown top-level key request", { request: ["a"] }, ["accessControl.request: unknown key", "go under permissions"]],
    ["misspelled top-level key", { perpeer: () => undefined }, ["accessControl.perpeer: unknown key", 'did you mean "perPeer"?']],
    [
      "unknown key in Permissions",
      { permissions: { requests: ["a"] } },
      ["accessControl.permissions.requests: unknown key", "request, event or stream", 'did you mean "request"?'],
    ],
    [
      "unknown key in NameRules",
      { permissions: { request: { allowed: ["a"] } } },
      ["accessControl.permissions.request.allowed: unknown key", "allow or deny", 'did you mean "allow"?'],
    ],
    [
      "unknown key in NameRules (denied)",
      { permissions: { event: { denied: ["a"] } } },
      ["accessControl.permissions.event.denied: unknown key", 'did you mean "deny"?'],
    ],
    [
      "a string instead of an array",
      { permissions: { request: "a.*" } },
      ["accessControl.permissions.request: a string is not a list of patterns", 'use an array: ["a.*"]'],
    ],
    [
      "a string allow list",
      { permissions: { stream: { allow: "s.>" } } },
      ["accessControl.permissions.stream.allow: a string is not a list of patterns", 'use an array: ["s.>"]'],
    ],
    ["a string deny list", { permissions: { event: { deny: "x" } } }, ["accessControl.permissions.event.deny: a string is not a list", '["x"]']],
    [
      "a number instead of rules",
      { permissions: { request: 5 } },
      ["accessControl.permissions.request: must be an array of name patterns or { allow?", "received number"],
    ],
    ["null instead of rules", { permissions: { request: null } }, ["accessControl.permissions.request: must be", "received null"]],
    [
      "an object allow list",
      { permissions: { request: { allow: { a: 1 } } } },
      ["accessControl.permissions.request.allow: must be an array of name patterns", "received an object"],
    ],
    [
      "permissions not an object",
      { permissions: ["a.>"] },
      ["accessControl.permissions: must be an object { request?, event?, stream? }", "received an array"],
    ],
    ["permissions a string", { permissions: "a" }, ["accessControl.permissions: must be an object", 'the string "a"']],
    ["a non-string pattern", { permissions: { request: ["a", 5] } }, ["accessControl.permissions.request[1]: a pattern must be a string, received number"]],
    [
      "a null pattern",
      { permissions: { request: { deny: [null] } } },
      ["accessControl.permissions.request.deny[0]: a pattern must be a string, received null"],
    ],
    ["an empty pattern", { permissions: { event: [""] } }, ["accessControl.permissions.event[0]: a pattern must not be empty"]],
    [
      "> not last",
      { permissions: { request: { allow: ["a", "b", "a.>.b"] } } },
      ['accessControl.permissions.request.allow[2]: pattern "a.>.b": ">" may only be the last token'],
    ],
    ["an empty token", { permissions: { stream: ["a..b"] } }, ['accessControl.permissions.stream[0]: pattern "a..b" has an empty token']],
    ["a trailing dot", { permissions: { stream: ["a.b."] } }, ['accessControl.permissions.stream[0]: pattern "a.b." has an empty token']],
    [
      "a partial wildcard",
      { permissions: { request: ["a*"] } },
      ['accessControl.permissions.request[0]: pattern "a*": "*" and ">" must be whole tokens (found "a*")'],
    ],
    [
      "perPeer not a function",
      { perPeer: { request: ["a"] } },
      ["accessControl.perPeer: must be a function (who) => Permissions | undefined", "received an object"],
    ],
    ["check not a function", { check: true }, ["accessControl.check: must be a function (access) => boolean | Promise<boolean>", "received boolean"]],
    ["defaultDeny not a boolean", { defaultDeny: "yes" }, ["accessControl.defaultDeny: must be a boolean", 'the string "yes"']],
    ["defaultDeny a number", { defaultDeny: 1 }, ["accessControl.defaultDeny: must be a boolean", "received number"]],
  ];

  for (const [label, policy, parts] of invalid) {
    test(`rejects ${label}`, () => {
      let error: unknown;
      try {
        validateAccessPolicy(policy);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      for (const part of parts) expect((error as Error).message).toContain(part);
    });
  }

  test("the exact message for a malformed pattern", () => {
    expect(() => validateAccessPolicy({ permissions: { request: { allow: ["a", "b", "a.>.b"] } } })).toThrow(
      new TypeError('accessControl.permissions.request.allow[2]: pattern "a.>.b": ">" may only be the last token'),
    );
  });

  test("where prefixes every message", () => {
    expect(() => validateAccessPolicy({ bogus: 1 }, "server.access")).toThrow(/^server\.access\.bogus: unknown key/);
    expect(() => validateAccessPolicy({ permissions: { request: ["a.>.b"] } }, "server.access")).toThrow(/^server\.access\.permissions\.request\[0\]: /);
    expect(() => validateAccessPolicy(7, "server.access")).toThrow(/^server\.access: must be/);
  });

  test("accepts valid policies", () => {
    const valid: unknown[] = [
      {},
      () => true,
      () => Promise.resolve(false),
      Object.create(null),
      { permissions: {} },
      { permissions: { request: [], event: { allow: [] }, stream: { deny: [] } } },
      {
        permissions: { request: ["a.*", ">", "*", "a.b.>"], event: { allow: ["x"], deny: ["x.y"] } },
        perPeer: () => undefined,
        defaultDeny: true,
        check: () => true,
      },
      { permissions: { request: undefined }, check: undefined, defaultDeny: undefined, perPeer: undefined },
    ];
    for (const p of valid) expect(() => validateAccessPolicy(p)).not.toThrow();
  });

  test("compileAccess refuses an invalid static policy (fail closed)", () => {
    expect(() => compileAccess({ permissions: { request: ["a.>.b"] } } as AccessPolicy, who())).toThrow(TypeError);
    expect(() => compileAccess({ allow: ["a"] } as unknown as AccessPolicy, who())).toThrow(/accessControl\.allow: unknown key/);
  });
});

describe("compileAccess refuses bad perPeer results (fail closed)", () => {
  const bad: [string, (w: Who) => unknown, string[]][] = [
    ["a string", () => "a.*", ["accessControl.perPeer(...): must be an object", 'the string "a.*"']],
    ["a string rule", () => ({ request: "a.*" }), ["accessControl.perPeer(...).request: a string is not a list of patterns", '["a.*"]']],
    ["an unknown Permissions key", () => ({ requests: ["a"] }), ["accessControl.perPeer(...).requests: unknown key", 'did you mean "request"?']],
    ["an unknown NameRules key", () => ({ event: { allowed: ["a"] } }), ["accessControl.perPeer(...).event.allowed: unknown key"]],
    ["a malformed pattern", () => ({ request: ["a.>.b"] }), ['accessControl.perPeer(...).request[0]: pattern "a.>.b": ">" may only be the last token']],
    ["a non-string pattern", () => ({ stream: { deny: [1] } }), ["accessControl.perPeer(...).stream.deny[0]: a pattern must be a string, received number"]],
    ["null", () => null, ["accessControl.perPeer(...): must be an object", "received null"]],
    ["an array", () => ["a.>"], ["accessControl.perPeer(...): must be an object", "received an array"]],
    ["a Promise", () => Promise.resolve({ request: ["a"] }), ["accessControl.perPeer(...): returned a Promise", "synchronously"]],
    ["a rejected Promise", () => Promise.reject(new Error("later")), ["accessControl.perPeer(...): returned a Promise"]],
  ];
  for (const [label, perPeer, parts] of bad) {
    test(`perPeer returning ${label}`, () => {
      let error: unknown;
      try {
        compileAccess({ perPeer: perPeer as (w: Who) => Permissions | undefined }, who());
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      for (const part of parts) expect((error as Error).message).toContain(part);
    });
  }

  test("perPeer throwing", () => {
    const cause = new Error("directory unreachable");
    let error: unknown;
    try {
      compileAccess({ perPeer: () => {
        throw cause;
      } }, who());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe("accessControl.perPeer(...): threw: directory unreachable");
    expect((error as Error).cause).toBe(cause);
  });

  test("a bad result for one peer does not affect others", () => {
    const policy: AccessPolicy = { perPeer: ({ principal }) => (principal === "bad" ? ({ request: "x" } as unknown as Permissions) : { request: ["x"] }) };
    expect(() => compileAccess(policy, who("bad"))).toThrow(TypeError);
    const good = compileAccess(policy, who("good"));
    expect(good.decide("request", "x")).toBe(true);
    expect(good.decide("request", "y")).toBe(false);
  });
});
