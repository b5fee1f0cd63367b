export {
  RewardRegistry,
  type RewardPlugin,
  type LoadedReward,
  type RewardContext,
  type RewardInput,
} from "./reward.ts";
export { combineRewards, type WeightedReward, type CombinedScore } from "./combine.ts";
