// Shared by the OpenTelemetry tests: a metric reader that only collects on demand.

import { MetricReader } from "@opentelemetry/sdk-metrics";

/** Collects when asked (`reader.collect()`); nothing periodic, nothing to flush. */
export class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}
