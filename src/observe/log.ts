// Structured logs through LogTape (https://logtape.org), library-style: EchoStream only gets
// loggers and never configures LogTape, so an application that configures nothing sees nothing
// (one exception: the development-certificate notice, see `notice`). Categories are
// ["echostream", <layer>]; configure ["echostream"] to get them all. docs/OBSERVABILITY.md lists
// every message.

import { getConfig, getLogger, type Logger } from "@logtape/logtape";

/** The layers that log, each its own category under `["echostream"]`. */
export type LogLayer = "transport" | "rpc" | "stream" | "clock" | "discovery" | "security" | "cluster";

const loggers = new Map<LogLayer, Logger>();

/** The logger of one layer: category `["echostream", layer]`. */
export function logger(layer: LogLayer): Logger {
  let l = loggers.get(layer);
  if (!l) loggers.set(layer, (l = getLogger(["echostream", layer])));
  return l;
}

/** Whether the application has configured LogTape (if not, every log call is a no-op). */
export function logsConfigured(): boolean {
  return getConfig() !== null;
}

/**
 * A notice the user must see even with no logging configured (how clients trust a development
 * certificate): logged at warning level in `layer`'s category when LogTape is configured,
 * printed with `console.warn` otherwise.
 */
export function notice(layer: LogLayer, message: string): void {
  if (logsConfigured()) logger(layer).warn("{notice}", { notice: message });
  else console.warn(message);
}

