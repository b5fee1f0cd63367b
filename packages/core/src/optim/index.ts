export { AdamW, ADAMW_DEFAULTS, type AdamWConfig, type AdamWState } from "./adamw.ts";
