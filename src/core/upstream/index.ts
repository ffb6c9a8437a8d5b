export { UpstreamHost, DEFAULT_HOST_LIMITS, type HostLimits } from './host.js';
export {
  createPolicy,
  selectHost,
  selectionInput,
  fnv1a32,
  POLICY_NAMES,
  type Policy,
  type SelectionInput,
} from './policy.js';
