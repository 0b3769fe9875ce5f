export { containerStatus, inspectContainer, ZERO_TIME } from "./inspect.js";
export { type RememberedState, rememberedState, STATE_LABELS } from "./labels.js";
export { type ObservedState, observe } from "./observe.js";
