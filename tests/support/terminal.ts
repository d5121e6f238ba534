// A real pseudo-terminal for tests of live output: the command runs in a detached tmux session,
// and the test reads the screen as a user would see it (carriage-return redraws included).

import { expect } from "bun:test";
import { run } from "./process.ts";

/** A command running in a tmux pane. */
export interface Terminal {
  /** The pane's visible text now. */
  screen(): Promise<string>;
  /** Types keys into the pane, in tmux's names (`C-c` is Ctrl-C). */
  keys(...keys: string[]): Promise<void>;
  /** Ends the session (and the command, if it still runs). */
  close(): Promise<unknown>;
}

/**
 * Runs `cmd` in a detached tmux session 160×40. When the command exits, the pane prints
 * `[exit N]` and stays 30 s, so its last screen can still be read.
 * @throws {Error} When tmux is not installed (.ci/run installs it).
 */
export async function inTerminal(name: string, cmd: string[]): Promise<Terminal> {
  const tmux = Bun.which("tmux");
  if (!tmux) throw new Error("tmux is not installed (apt-get install tmux; .ci/run installs it): the live-output tests need a pseudo-terminal");
  const quoted = cmd.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const session = `echostream-${name}-${process.pid}`;
  expect((await run([tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "40", `${quoted}; echo "[exit $?]"; sleep 30`])).code).toBe(0);
  return {
    screen: async () => (await run([tmux, "capture-pane", "-p", "-t", session])).stdout,
    keys: async (...keys) => {
      expect((await run([tmux, "send-keys", "-t", session, ...keys])).code).toBe(0);
    },
    close: () => run([tmux, "kill-session", "-t", session]),
  };
}
