/** GreptimeDB's procedure framework stores its poison keys under this prefix. */
export const DEFAULT_NAMESPACE = "/__procedure_poison/";
