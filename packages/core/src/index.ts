export * from "./device/index.ts";
