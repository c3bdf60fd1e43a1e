/** Azure OpenAI speaks OpenAI's chat format plus content-filter annotations, typed here. */

export const AZURE_DEFAULT_API_VERSION = "2024-10-21";

export interface AzureFilterVerdict {
  filtered: boolean;
  severity?: "safe" | "low" | "medium" | "high";
  detected?: boolean;
}

export type AzureContentFilterResults = Record<string, AzureFilterVerdict | Record<string, unknown>>;

/** Sent first in a stream (with empty `choices`) and at the top of a plain response. */
export interface AzurePromptFilterResult {
  prompt_index: number;
  content_filter_results: AzureContentFilterResults;
}

/** Fields Azure adds to a response or chunk body. */
export const AZURE_BODY_EXTRAS = ["prompt_filter_results"] as const;

/** Fields Azure adds to each choice. */
export const AZURE_CHOICE_EXTRAS = ["content_filter_results", "content_filter_offsets"] as const;
