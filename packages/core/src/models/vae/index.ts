// The blocks stay internal: generic names such as Attention
// would collide with other models' exports at the package root.
export { AutoencoderKL, type AutoencoderKLOptions, type LatentDistribution } from "./autoencoder.ts";
export { parseVaeConfig, type VaeConfig } from "./config.ts";
