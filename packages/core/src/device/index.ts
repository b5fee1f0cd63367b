export {
  openDevice,
  listAdapters,
  DeviceError,
  DEFAULT_DAWN_TOGGLES,
  type Gpu,
  type DeviceInfo,
  type OpenDeviceOptions,
} from "./open-device.ts";
export { formatAdapters, parseDeviceIndex, type AdapterEntry } from "./adapter-choice.ts";
export { selfTest } from "./self-test.ts";
export type { Runtime as JsRuntime, BindingName, BackendRequest } from "./bindings.ts";
export { metaGpu } from "./meta-device.ts";
