export * from "./runner.ts";
export * from "./elementwise.ts";
