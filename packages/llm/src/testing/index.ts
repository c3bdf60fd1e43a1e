import { anthropicProtocol } from "./protocols/anthropic.ts";
import { azureProtocol } from "./protocols/azure.ts";
import { geminiProtocol } from "./protocols/gemini.ts";
import { ollamaProtocol } from "./protocols/ollama.ts";
import { openAIProtocol } from "./protocols/openai.ts";
import { type SimProtocol, UpstreamSimulator } from "./simulator.ts";

export { anthropicProtocol } from "./protocols/anthropic.ts";
export { azureProtocol } from "./protocols/azure.ts";
export { geminiProtocol } from "./protocols/gemini.ts";
export { ollamaProtocol } from "./protocols/ollama.ts";
export { openAIProtocol } from "./protocols/openai.ts";
export * from "./simulator.ts";

/** Every protocol the simulator speaks; more specific ones first. */
export function allProtocols(): SimProtocol[] {
  return [anthropicProtocol(), azureProtocol(), geminiProtocol(), ollamaProtocol(), openAIProtocol()];
}

/** Starts a simulator on a free loopback port speaking every protocol. */
export function startSimulator(protocols: SimProtocol[] = allProtocols()): Promise<UpstreamSimulator> {
  return new UpstreamSimulator(protocols).start();
}
