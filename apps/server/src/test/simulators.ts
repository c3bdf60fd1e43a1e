import { allProtocols, UpstreamSimulator } from "@lyss/llm/testing";
import { afterAll, beforeAll, beforeEach } from "vitest";

/**
 * Two upstream simulators for a suite (a primary and a backup to fail over to): listening before its
 * first test, their faults and records cleared before each test, closed after the last.
 */
export function suiteSimulators(): [UpstreamSimulator, UpstreamSimulator] {
  const sims: [UpstreamSimulator, UpstreamSimulator] = [new UpstreamSimulator(allProtocols()), new UpstreamSimulator(allProtocols())];
  beforeAll(async () => {
    await Promise.all(sims.map((sim) => sim.start()));
  });
  afterAll(async () => {
    await Promise.all(sims.map((sim) => sim.close()));
  });
  beforeEach(() => {
    for (const sim of sims) sim.reset();
  });
  return sims;
}
