/**
 * `@textcraftor/webgpu-kernels/internal`: workarounds for a binding's quirks that the core needs too, not a
 * kernel API. They change without notice.
 */
export { holdEncodedStrings, holdPackedArguments } from "./ffi-strings.ts";
